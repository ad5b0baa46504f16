package clip

import (
	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// ProjectedEncoder is Hugging Face's CLIPTextModelWithProjection (the SDXL
// refiner's text_encoder_2): a TextEncoder with text_projection, a linear
// map without bias, on top.
type ProjectedEncoder struct {
	*TextEncoder
	Projection *nn.Linear // text_projection: [ProjectionDim, HiddenSize]
}

// LoadProjected builds the encoder and its projection from w (rooted at
// text_model's parent). Call w.Err() afterwards.
func LoadProjected(w *weights.Source, c Config) *ProjectedEncoder {
	return &ProjectedEncoder{
		TextEncoder: Load(w, c),
		Projection:  nn.LoadLinear(w.Sub("text_projection"), c.HiddenSize, c.ProjectionDim, false),
	}
}

// EncodeSDXL returns what SDXL's pipelines condition on (diffusers'
// encode_prompt): the penultimate layer's hidden states [B, 77, width], before
// the final layer norm, as the prompt embeddings, and the pooled embedding
// [B, ProjectionDim]: the final layer norm's output at the end-of-text token
// (the first occurrence of the highest id in a row, as transformers picks it
// for these configs), through text_projection.
func (e *ProjectedEncoder) EncodeSDXL(ids *tensor.Tensor) (embeddings, pooled *tensor.Tensor) {
	rows := ids.Int32s()
	n := ids.Dim(1)
	b := ids.Backend()
	if s, ok := b.(tensor.Scoper); ok {
		// Only the two results outlive the call (token ids carry no gradient).
		end := s.BeginScope()
		defer func() {
			if pooled != nil {
				end(embeddings.Buffer(), pooled.Buffer())
			} else {
				end()
			}
		}()
	}
	last, penultimate := e.hiddenStates(ids)
	last = e.FinalNorm.Forward(last)
	picked := make([]*tensor.Tensor, ids.Dim(0))
	for i := range picked {
		picked[i] = last.Narrow(0, i, 1).Narrow(1, argmax(rows[i*n:(i+1)*n]), 1).Reshape(1, last.Dim(2))
	}
	return penultimate, e.Projection.Forward(tensor.Concat(0, picked...))
}

// argmax is the index of the first largest id.
func argmax(ids []int32) int {
	if len(ids) == 0 {
		panic("clip: no token ids")
	}
	best := 0
	for i, id := range ids {
		if id > ids[best] {
			best = i
		}
	}
	return best
}
