package sam

import (
	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// VisionEncoder is the ViT image encoder (transformers' SamVisionEncoder, the
// original ImageEncoderViT): patch embedding, absolute position embedding, blocks
// of windowed or global attention, and the neck.
type VisionEncoder struct {
	PatchEmbed *nn.Conv2d
	// PosEmbed is [1, G, G, D], added to the channels-last patch grid.
	PosEmbed *tensor.Tensor
	Layers   []*VisionLayer
	Neck     *Neck
}

// LoadVisionEncoder reads vision_encoder.* (w rooted there).
func LoadVisionEncoder(w *weights.Source, c Config) *VisionEncoder {
	v, g := c.Vision, c.Grid()
	e := &VisionEncoder{
		PatchEmbed: &nn.Conv2d{Weight: w.Tensor("patch_embed.projection.weight", v.HiddenSize, v.NumChannels, v.PatchSize, v.PatchSize),
			Bias: w.Tensor("patch_embed.projection.bias", v.HiddenSize), Stride: v.PatchSize},
		PosEmbed: w.Tensor("pos_embed", 1, g, g, v.HiddenSize),
		Neck:     loadNeck(w.Sub("neck"), v.HiddenSize, v.OutputChannels, v.LayerNormEps),
	}
	for i := 0; i < v.NumHiddenLayers; i++ {
		e.Layers = append(e.Layers, loadVisionLayer(w.Sub("layers", i), c, c.windowOf(i)))
	}
	return e
}

// Forward maps pixel values [B, 3, S, S] (normalized and padded, as Preprocess
// makes them) to image embeddings [B, C, G, G].
func (e *VisionEncoder) Forward(pixels *tensor.Tensor) *tensor.Tensor {
	x := e.PatchEmbed.Forward(pixels).Permute(0, 2, 3, 1) // [B, G, G, D]
	x = x.Add(e.PosEmbed)
	for _, l := range e.Layers {
		x = l.Forward(x)
	}
	return e.Neck.Forward(x)
}

// VisionLayer is one encoder block: pre-norm attention (in windows of Window×Window
// patches, or global when Window is 0) and a pre-norm GELU MLP, both residual.
type VisionLayer struct {
	LayerNorm1 *nn.LayerNorm
	Attn       *VisionAttention
	LayerNorm2 *nn.LayerNorm
	MLP        *MLPBlock
	Window     int
}

func loadVisionLayer(w *weights.Source, c Config, window int) *VisionLayer {
	v := c.Vision
	side := c.Grid() // the relative position tables cover the attended span
	if window > 0 {
		side = window
	}
	return &VisionLayer{
		LayerNorm1: nn.LoadLayerNorm(w.Sub("layer_norm1"), v.HiddenSize, v.LayerNormEps),
		Attn:       loadVisionAttention(w.Sub("attn"), v.HiddenSize, v.NumAttentionHeads, side, v.QKVBias),
		LayerNorm2: nn.LoadLayerNorm(w.Sub("layer_norm2"), v.HiddenSize, v.LayerNormEps),
		MLP:        loadMLPBlock(w.Sub("mlp"), v.HiddenSize, c.VisionMLPDim(), false),
		Window:     window,
	}
}

// Forward maps x [B, G, G, D] to the same shape.
func (l *VisionLayer) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := l.LayerNorm1.Forward(x)
	if l.Window > 0 {
		gh, gw := h.Dim(1), h.Dim(2)
		h = windowPartition(h, l.Window)
		h = l.Attn.Forward(h)
		h = windowUnpartition(h, l.Window, x.Dim(0), gh, gw)
	} else {
		h = l.Attn.Forward(h)
	}
	x = x.Add(h)
	return x.Add(l.MLP.Forward(l.LayerNorm2.Forward(x)))
}

// Neck maps the encoder's width to the prompt width: a 1×1 convolution, a channel
// layer norm, a 3×3 convolution, another channel layer norm, all without bias.
type Neck struct {
	// Conv1 is the 1×1 convolution as a linear map over channels [Out, In].
	Conv1                  *tensor.Tensor
	LayerNorm1, LayerNorm2 *nn.LayerNorm
	Conv2                  *nn.Conv2d
}

func loadNeck(w *weights.Source, in, out int, eps float64) *Neck {
	return &Neck{
		Conv1:      w.Tensor("conv1.weight", out, in, 1, 1).Reshape(out, in),
		LayerNorm1: nn.LoadLayerNorm(w.Sub("layer_norm1"), out, eps),
		Conv2:      &nn.Conv2d{Weight: w.Tensor("conv2.weight", out, out, 3, 3), Stride: 1, Pad: 1},
		LayerNorm2: nn.LoadLayerNorm(w.Sub("layer_norm2"), out, eps),
	}
}

// Forward maps x [B, G, G, D] (channels last) to [B, C, G, G]. A channel layer
// norm (transformers' SamLayerNorm channels_first, the original LayerNorm2d) is a
// layer norm over the last axis of the channels-last layout.
func (n *Neck) Forward(x *tensor.Tensor) *tensor.Tensor {
	x = n.LayerNorm1.Forward(x.Linear(n.Conv1, nil))
	x = n.Conv2.Forward(x.Permute(0, 3, 1, 2))
	return n.LayerNorm2.Forward(x.Permute(0, 2, 3, 1)).Permute(0, 3, 1, 2)
}
