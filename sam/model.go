package sam

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// EmbedImage runs the image encoder on pixel values [1, 3, S, S] (Preprocess's
// output) and returns the image embeddings [1, C, G, G].
func (m *Model) EmbedImage(pixels *tensor.Tensor) *tensor.Tensor {
	s := m.Config.Vision.ImageSize
	if !pixels.Shape().Equal(tensor.Shape{1, 3, s, s}) {
		panic(fmt.Sprintf("sam: embed image: pixels %v, want [1 3 %d %d]", pixels.Shape(), s, s))
	}
	return m.Vision.Forward(pixels)
}

// Predict segments one prompt on an image's embeddings [1, C, G, G]. It returns
// low-resolution mask logits [1, k, 4G, 4G] and the predicted IoU of each [1, k]:
// the three multimask candidates (k = 3), or the single-mask output (k = 1).
func (m *Model) Predict(emb *tensor.Tensor, p Prompt, multimask bool) (lowRes, iou *tensor.Tensor, err error) {
	s := float64(m.Config.Vision.ImageSize)
	for i, pt := range p.Points {
		if pt[0] < 0 || pt[1] < 0 || pt[0] >= s || pt[1] >= s {
			return nil, nil, fmt.Errorf("sam: prompt: point %d at (%g, %g) is outside the encoder's %gx%g input", i, pt[0], pt[1], s, s)
		}
	}
	sparse, err := m.Prompt.Sparse(p)
	if err != nil {
		return nil, nil, err
	}
	lowRes, iou = m.Decoder.Forward(emb, m.Prompt.DensePositional(), sparse.To(emb.DType()), m.Prompt.NoMaskEmbed.To(emb.DType()), multimask)
	return lowRes, iou, nil
}
