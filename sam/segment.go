package sam

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// ImagePrompt is a prompt in the original image's pixels (x before y), as a
// caller of SamProcessor passes input_points, input_labels and input_boxes.
type ImagePrompt struct {
	Points [][2]float64
	Labels []int
	// Box is x0, y0, x1, y1; nil for none.
	Box *[4]float64
}

// Segmentation is one prompt's result on one image: what SamModel returns and
// what post_process_masks makes of it.
type Segmentation struct {
	Embeddings *tensor.Tensor // [1, C, G, G]
	LowRes     *tensor.Tensor // [k, 4G, 4G] logits
	IoU        []float32      // [k], the decoder's predicted IoU ("confidence")
	// Masks are [k, Height, Width] logits at the image's size (a mask is > 0).
	Masks         []float32
	Height, Width int
}

// Segment is the whole of SamProcessor + SamModel + post_process_masks for one
// image and one prompt: preprocess, embed, scale the prompt to the encoder's
// input, decode (k = 3 candidates with multimask, else 1) and post-process to
// the image's size. A prompt outside the image is an error naming its size.
func (m *Model) Segment(img RGB, p ImagePrompt, multimask bool) (*Segmentation, error) {
	b, d := m.Prompt.PositionalEmbedding.Backend(), m.Prompt.PositionalEmbedding.DType()
	proc, err := Preprocess(img, m.Config.Vision.ImageSize)
	if err != nil {
		return nil, err
	}
	q := Prompt{Labels: p.Labels}
	for _, pt := range p.Points {
		s, err := proc.ScalePoint(pt[0], pt[1])
		if err != nil {
			return nil, err
		}
		q.Points = append(q.Points, s)
	}
	if p.Box != nil {
		s, err := proc.ScaleBox(*p.Box)
		if err != nil {
			return nil, err
		}
		q.Box = &s
	}
	emb := m.EmbedImage(proc.Tensor(b, d))
	low, iou, err := m.Predict(emb, q, multimask)
	if err != nil {
		return nil, err
	}
	low = low.Reshape(low.Shape()[1:]...)
	if low.Dim(0) != iou.Dim(1) {
		panic(fmt.Sprintf("sam: segment: %d masks but %v IoU scores", low.Dim(0), iou.Shape()))
	}
	return &Segmentation{Embeddings: emb, LowRes: low, IoU: iou.Float32s(), Masks: proc.PostProcess(low),
		Height: img.Height, Width: img.Width}, nil
}
