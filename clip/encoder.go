package clip

import (
	"math"

	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// TextEncoder is a CLIP text transformer (Hugging Face CLIPTextModel names).
// Its output is the last hidden state after the final layer norm.
type TextEncoder struct {
	Config    Config
	TokenEmb  *tensor.Tensor // [vocab, width]
	PosEmb    *tensor.Tensor // [positions, width]
	Layers    []*encoderLayer
	FinalNorm *nn.LayerNorm
}

type encoderLayer struct {
	Norm1, Norm2 *nn.LayerNorm
	Q, K, V, Out *nn.Linear
	FC1, FC2     *nn.Linear
	Heads        int
	QuickGELU    bool
}

// Load builds the encoder from w (rooted at text_model's parent). Call w.Err() afterwards.
func Load(w *weights.Source, c Config) *TextEncoder {
	tm := w.Sub("text_model")
	d := c.HiddenSize
	e := &TextEncoder{
		Config:    c,
		TokenEmb:  tm.Sub("embeddings", "token_embedding").Tensor("weight", c.VocabSize, d),
		PosEmb:    tm.Sub("embeddings", "position_embedding").Tensor("weight", c.MaxPositionEmbeddings, d),
		FinalNorm: nn.LoadLayerNorm(tm.Sub("final_layer_norm"), d, c.LayerNormEps),
	}
	for i := 0; i < c.NumHiddenLayers; i++ {
		l := tm.Sub("encoder", "layers", i)
		a := l.Sub("self_attn")
		e.Layers = append(e.Layers, &encoderLayer{
			Norm1: nn.LoadLayerNorm(l.Sub("layer_norm1"), d, c.LayerNormEps),
			Norm2: nn.LoadLayerNorm(l.Sub("layer_norm2"), d, c.LayerNormEps),
			Q:     nn.LoadLinear(a.Sub("q_proj"), d, d, true),
			K:     nn.LoadLinear(a.Sub("k_proj"), d, d, true),
			V:     nn.LoadLinear(a.Sub("v_proj"), d, d, true),
			Out:   nn.LoadLinear(a.Sub("out_proj"), d, d, true),
			FC1:   nn.LoadLinear(l.Sub("mlp", "fc1"), d, c.IntermediateSize, true),
			FC2:   nn.LoadLinear(l.Sub("mlp", "fc2"), c.IntermediateSize, d, true),
			Heads: c.NumAttentionHeads, QuickGELU: c.HiddenAct == "quick_gelu",
		})
	}
	return e
}

// Encode returns the hidden states [B, 77, width] for token ids [B, 77].
func (e *TextEncoder) Encode(ids *tensor.Tensor) *tensor.Tensor {
	// Token ids carry no gradient: only the hidden states outlive the call,
	// and the intermediates go back to the device cache as it returns.
	return tensor.Scoped(ids.Backend(), func() *tensor.Tensor { return e.encode(ids) })
}

func (e *TextEncoder) encode(ids *tensor.Tensor) *tensor.Tensor {
	last, _ := e.hiddenStates(ids)
	return e.FinalNorm.Forward(last)
}

// hiddenStates runs the embeddings and every layer, and returns the last
// layer's output and the one before it (transformers' hidden_states[-1] and
// [-2]; with one layer, the second is the embeddings' output), both before
// the final layer norm.
func (e *TextEncoder) hiddenStates(ids *tensor.Tensor) (last, penultimate *tensor.Tensor) {
	n := ids.Dim(1)
	x := tensor.Embedding(e.TokenEmb, ids).Add(e.PosEmb.Narrow(0, 0, n))
	mask := causalMask(x.Backend(), x.DType(), n)
	for _, l := range e.Layers {
		penultimate = x
		x = x.Add(l.attend(l.Norm1.Forward(x), mask))
		h := l.FC1.Forward(l.Norm2.Forward(x))
		if l.QuickGELU {
			h = h.QuickGELU()
		} else {
			h = h.GELU()
		}
		x = x.Add(l.FC2.Forward(h))
	}
	return x, penultimate
}

// attend is CLIP's causal self-attention.
func (l *encoderLayer) attend(x, mask *tensor.Tensor) *tensor.Tensor {
	q := nn.SplitHeads(l.Q.Forward(x), l.Heads)
	k := nn.SplitHeads(l.K.Forward(x), l.Heads)
	v := nn.SplitHeads(l.V.Forward(x), l.Heads)
	scale := 1 / math.Sqrt(float64(q.Dim(-1)))
	return l.Out.Forward(nn.MergeHeads(nn.ScaledDotProduct(q, k, v, mask, scale, false, nil)))
}

// causalMask is [n, n] with -inf above the diagonal: position i sees positions ≤ i.
func causalMask(b tensor.Backend, d tensor.DType, n int) *tensor.Tensor {
	m := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			m[i*n+j] = math.Inf(-1)
		}
	}
	return tensor.FromFloat64(b, d, tensor.Shape{n, n}, m)
}
