package sam

import (
	"fmt"
	"math"
	"sync"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// Point labels, as SAM's prompt encoder reads them.
const (
	// Background marks a point outside the object (point_embed.0).
	Background = 0
	// Foreground marks a point on the object (point_embed.1).
	Foreground = 1
)

// Prompt is what the mask decoder segments: points with labels and at most one
// box, all in the encoder's input pixels (after Preprocess's resize: see
// ScalePoint), x before y.
type Prompt struct {
	Points [][2]float64
	Labels []int
	// Box is x0, y0, x1, y1; nil for none.
	Box *[4]float64
}

// PromptEncoder embeds prompts (transformers' SamPromptEncoder with the shared
// SamPositionalEmbedding; the original PromptEncoder): random Fourier features of
// the coordinates plus a learned embedding per label.
type PromptEncoder struct {
	// PositionalEmbedding is the Gaussian frequency matrix [2, F] (F = C/2),
	// stored as shared_image_embedding.positional_embedding.
	PositionalEmbedding *tensor.Tensor
	// PointEmbed are [1, C] each: negative point, positive point, box corner 1, 2.
	PointEmbed     []*tensor.Tensor
	NotAPointEmbed *tensor.Tensor // [1, C], for the padding point
	NoMaskEmbed    *tensor.Tensor // [1, C], the dense embedding when no mask is given
	ImageSize      int
	Grid           int

	once  sync.Once
	host  promptWeights
	dense *tensor.Tensor
}

// promptWeights are the encoder's small tables, copied to the host on first use.
type promptWeights struct {
	gauss       []float64 // [2, F]
	point       [][]float64
	width, feat int
}

// LoadPromptEncoder reads prompt_encoder.* (w rooted at the model) and the shared
// positional matrix.
func LoadPromptEncoder(w *weights.Source, c Config) *PromptEncoder {
	p, hidden := w.Sub("prompt_encoder"), c.PromptEncoder.HiddenSize
	e := &PromptEncoder{
		PositionalEmbedding: w.Tensor(sharedPE, 2, c.Vision.NumPosFeats),
		NotAPointEmbed:      p.Tensor("not_a_point_embed.weight", 1, hidden),
		NoMaskEmbed:         p.Tensor("no_mask_embed.weight", 1, hidden),
		ImageSize:           c.Vision.ImageSize,
		Grid:                c.Grid(),
	}
	for i := 0; i < c.PromptEncoder.NumPointEmbeddings; i++ {
		e.PointEmbed = append(e.PointEmbed, p.Tensor(fmt.Sprintf("point_embed.%d.weight", i), 1, hidden))
	}
	return e
}

func (e *PromptEncoder) hostWeights() *promptWeights {
	e.once.Do(func() {
		e.host.gauss = e.PositionalEmbedding.Float64s()
		e.host.feat = e.PositionalEmbedding.Dim(1)
		e.host.width = 2 * e.host.feat
		for _, p := range e.PointEmbed {
			e.host.point = append(e.host.point, p.Float64s())
		}
		e.dense = e.denseFromHost()
	})
	return &e.host
}

// fourier writes the positional encoding of a point normalized to [0, 1]² into
// out [C]: sin then cos of 2π·((2p-1)·G) (the original _pe_encoding).
func (h *promptWeights) fourier(x, y float64, out []float64) {
	x, y = 2*x-1, 2*y-1
	for f := 0; f < h.feat; f++ {
		a := 2 * math.Pi * (x*h.gauss[f] + y*h.gauss[h.feat+f])
		out[f], out[h.feat+f] = math.Sin(a), math.Cos(a)
	}
}

// DensePositional is the encoding of every patch centre, [1, G·G, C] in row-major
// patch order: the image_pe the mask decoder adds to the image embedding.
func (e *PromptEncoder) DensePositional() *tensor.Tensor {
	e.hostWeights()
	return e.dense
}

func (e *PromptEncoder) denseFromHost() *tensor.Tensor {
	h, g := &e.host, e.Grid
	v := make([]float64, g*g*h.width)
	for i := 0; i < g; i++ {
		for j := 0; j < g; j++ {
			h.fourier((float64(j)+0.5)/float64(g), (float64(i)+0.5)/float64(g), v[(i*g+j)*h.width:][:h.width])
		}
	}
	return tensor.FromFloat64(e.PositionalEmbedding.Backend(), e.PositionalEmbedding.DType(), tensor.Shape{1, g * g, h.width}, v)
}

// Sparse embeds p's points and box as [1, n, C]. Without a box, a padding point
// (label -1, the not-a-point embedding) follows the points, as in both
// implementations. Coordinates are shifted to pixel centres (+0.5).
func (e *PromptEncoder) Sparse(p Prompt) (*tensor.Tensor, error) {
	if len(p.Points) != len(p.Labels) {
		return nil, fmt.Errorf("sam: prompt: %d points but %d labels", len(p.Points), len(p.Labels))
	}
	if len(p.Points) == 0 && p.Box == nil {
		return nil, fmt.Errorf("sam: prompt: no point and no box")
	}
	h := e.hostWeights()
	s := float64(e.ImageSize)
	var rows [][]float64
	add := func(x, y float64, embed []float64) {
		r := make([]float64, h.width)
		h.fourier((x+0.5)/s, (y+0.5)/s, r)
		for i := range r {
			r[i] += embed[i]
		}
		rows = append(rows, r)
	}
	for i, pt := range p.Points {
		if l := p.Labels[i]; l != Background && l != Foreground {
			return nil, fmt.Errorf("sam: prompt: point %d has label %d, want %d (background) or %d (foreground)", i, l, Background, Foreground)
		}
		add(pt[0], pt[1], h.point[p.Labels[i]])
	}
	if p.Box == nil {
		// The padding point's encoding is replaced by the not-a-point embedding.
		rows = append(rows, e.NotAPointEmbed.Float64s())
	} else {
		add(p.Box[0], p.Box[1], h.point[2])
		add(p.Box[2], p.Box[3], h.point[3])
	}
	flat := make([]float64, 0, len(rows)*h.width)
	for _, r := range rows {
		flat = append(flat, r...)
	}
	return tensor.FromFloat64(e.PositionalEmbedding.Backend(), e.PositionalEmbedding.DType(), tensor.Shape{1, len(rows), h.width}, flat), nil
}
