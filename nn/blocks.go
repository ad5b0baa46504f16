package nn

import (
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// FeedForward is the transformer MLP of the SD UNet: a GEGLU projection to
// 2·Inner, the gate, and a projection back (diffusers' ff.net.0.proj, ff.net.2).
// The first projection's bias is added inside the gate's pass
// (tensor.GEGLUBias), not over its 2·Inner-wide output first.
type FeedForward struct{ In, Out *Linear }

// LoadFeedForward reads ff.net.0.proj [2·inner, dim] and ff.net.2 [dim, inner].
func LoadFeedForward(w *weights.Source, dim, inner int) *FeedForward {
	return &FeedForward{In: LoadLinear(w.Sub("net", 0, "proj"), dim, 2*inner, true), Out: LoadLinear(w.Sub("net", 2), inner, dim, true)}
}

// Forward applies the MLP to the last axis.
func (f *FeedForward) Forward(x *tensor.Tensor) *tensor.Tensor {
	return f.Out.Forward(f.gate(x))
}

// ForwardAdd is residual + Forward(x), the residual added where the last
// projection accumulates.
func (f *FeedForward) ForwardAdd(x, residual *tensor.Tensor) *tensor.Tensor {
	return f.Out.ForwardAdd(f.gate(x), residual)
}

// gate is GEGLU(In(x)), In's bias added in the gate.
func (f *FeedForward) gate(x *tensor.Tensor) *tensor.Tensor {
	return x.Linear(f.In.Weight, nil).GEGLUBias(f.In.Bias)
}

// ResBlock is diffusers' ResnetBlock2D: two GroupNorm-SiLU-conv stages, the
// time embedding added between them (UNet only), and a 1×1 shortcut when the
// channel count changes. Each norm and its SiLU run as one fused op, the
// second with the time-embedding add folded in (AddGroupNormSiLU).
type ResBlock struct {
	Norm1, Norm2 *GroupNorm
	Conv1, Conv2 *Conv2d
	TimeProj     *Linear // nil in the VAE
	Shortcut     *Conv2d // nil when in == out
}

// LoadResBlock reads norm1, conv1, time_emb_proj (when tembDim > 0), norm2, conv2, conv_shortcut.
func LoadResBlock(w *weights.Source, in, out, tembDim, groups int, eps float64) *ResBlock {
	r := &ResBlock{
		Norm1: LoadGroupNorm(w.Sub("norm1"), groups, in, eps),
		Conv1: LoadConv2d(w.Sub("conv1"), in, out, 3, 1),
		Norm2: LoadGroupNorm(w.Sub("norm2"), groups, out, eps),
		Conv2: LoadConv2d(w.Sub("conv2"), out, out, 3, 1),
	}
	if tembDim > 0 {
		r.TimeProj = LoadLinear(w.Sub("time_emb_proj"), tembDim, out, true)
	}
	if in != out {
		r.Shortcut = LoadConv2d(w.Sub("conv_shortcut"), in, out, 1, 1)
	}
	return r
}

// Forward runs x [N, C, H, W] with time embedding temb [N, T] (nil in the VAE).
func (r *ResBlock) Forward(x, temb *tensor.Tensor) *tensor.Tensor {
	h := r.Conv1.Forward(r.Norm1.ForwardSiLU(x))
	var t *tensor.Tensor // the time embedding [N, C], added to h on every plane inside norm2
	if r.TimeProj != nil {
		t = r.TimeProj.Forward(temb.SiLU())
	}
	if r.Shortcut != nil {
		x = r.Shortcut.Forward(x)
	}
	// The skip connection is added where conv2 accumulates its product.
	return r.Conv2.ForwardAdd(r.Norm2.ForwardAddSiLU(h, t), x)
}

// Downsample halves the resolution with a stride-2 3×3 convolution. With
// PadEnd the input is padded by one on the right and bottom only and the
// convolution itself is unpadded (the VAE encoder's Downsample2D).
type Downsample struct {
	Conv   *Conv2d
	PadEnd bool
}

// LoadDownsample reads conv [ch, ch, 3, 3].
func LoadDownsample(w *weights.Source, ch int, padEnd bool) *Downsample {
	c := LoadConv2d(w.Sub("conv"), ch, ch, 3, 2)
	if padEnd {
		c.Pad = 0
	}
	return &Downsample{Conv: c, PadEnd: padEnd}
}

// Forward downsamples x [N, C, H, W].
func (d *Downsample) Forward(x *tensor.Tensor) *tensor.Tensor {
	if d.PadEnd {
		n, c, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
		x = tensor.Concat(3, x, tensor.Zeros(x.Backend(), x.DType(), n, c, h, 1))
		x = tensor.Concat(2, x, tensor.Zeros(x.Backend(), x.DType(), n, c, 1, w+1))
	}
	return d.Conv.Forward(x)
}

// Upsample doubles the resolution (nearest neighbour) and applies a 3×3 convolution.
type Upsample struct{ Conv *Conv2d }

// LoadUpsample reads conv [ch, ch, 3, 3].
func LoadUpsample(w *weights.Source, ch int) *Upsample {
	return &Upsample{Conv: LoadConv2d(w.Sub("conv"), ch, ch, 3, 1)}
}

// Forward upsamples x [N, C, H, W] to [N, C, 2H, 2W].
func (u *Upsample) Forward(x *tensor.Tensor) *tensor.Tensor { return u.Conv.Forward(x.Upsample2x()) }

// ForwardTo upsamples x to h×w, at most 2H×2W: nearest-neighbour interpolation to
// 2n-1 equals doubling and dropping the last row or column, which is what the
// UNet needs after an odd size was halved (rounding up).
func (u *Upsample) ForwardTo(x *tensor.Tensor, h, w int) *tensor.Tensor {
	return u.Conv.Forward(x.Upsample2x().Narrow(2, 0, h).Narrow(3, 0, w))
}
