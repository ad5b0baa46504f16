package nn

import (
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// Linear is y = x·Wᵀ + b with W [Out, In].
type Linear struct{ Weight, Bias *tensor.Tensor }

// LoadLinear reads weight [out, in] and, when bias is set, bias [out].
func LoadLinear(w *weights.Source, in, out int, bias bool) *Linear {
	l := &Linear{Weight: w.Tensor("weight", out, in)}
	if bias {
		l.Bias = w.Tensor("bias", out)
	}
	return l
}

// Forward applies the layer to the last axis of x.
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor { return x.Linear(l.Weight, l.Bias) }

// ForwardAdd is residual + Forward(x), the sum formed where the product
// accumulates (tensor.LinearAdd).
func (l *Linear) ForwardAdd(x, residual *tensor.Tensor) *tensor.Tensor {
	return x.LinearAdd(l.Weight, l.Bias, residual)
}

// Conv2d is a 2-D convolution with a square kernel.
type Conv2d struct {
	Weight, Bias *tensor.Tensor
	Stride, Pad  int
}

// LoadConv2d reads weight [out, in, k, k] and bias [out]; padding is k/2 ("same" at stride 1).
func LoadConv2d(w *weights.Source, in, out, k, stride int) *Conv2d {
	return &Conv2d{Weight: w.Tensor("weight", out, in, k, k), Bias: w.Tensor("bias", out), Stride: stride, Pad: k / 2}
}

// Forward convolves x [N, C, H, W].
func (c *Conv2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return x.Conv2d(c.Weight, c.Bias, c.Stride, c.Pad)
}

// ForwardAdd is residual + Forward(x), the sum formed where the product
// accumulates (tensor.Conv2dAdd).
func (c *Conv2d) ForwardAdd(x, residual *tensor.Tensor) *tensor.Tensor {
	return x.Conv2dAdd(c.Weight, c.Bias, residual, c.Stride, c.Pad)
}

// GroupNorm normalizes groups of channels of x [N, C, ...].
type GroupNorm struct {
	Groups       int
	Eps          float64
	Weight, Bias *tensor.Tensor
}

// LoadGroupNorm reads weight and bias [channels].
func LoadGroupNorm(w *weights.Source, groups, channels int, eps float64) *GroupNorm {
	return &GroupNorm{Groups: groups, Eps: eps, Weight: w.Tensor("weight", channels), Bias: w.Tensor("bias", channels)}
}

// Forward normalizes x.
func (g *GroupNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return x.GroupNorm(g.Groups, g.Weight, g.Bias, g.Eps)
}

// ForwardSiLU is Forward followed by SiLU, as one fused op.
func (g *GroupNorm) ForwardSiLU(x *tensor.Tensor) *tensor.Tensor {
	return x.GroupNormSiLU(g.Groups, g.Weight, g.Bias, g.Eps)
}

// ForwardAddSiLU is ForwardSiLU of x [N, C, ...] plus shift [N, C] on every
// plane, as one fused op; a nil shift adds nothing.
func (g *GroupNorm) ForwardAddSiLU(x, shift *tensor.Tensor) *tensor.Tensor {
	return x.AddGroupNormSiLU(shift, g.Groups, g.Weight, g.Bias, g.Eps)
}

// LayerNorm normalizes the last axis.
type LayerNorm struct {
	Eps          float64
	Weight, Bias *tensor.Tensor
}

// LoadLayerNorm reads weight and bias [dim].
func LoadLayerNorm(w *weights.Source, dim int, eps float64) *LayerNorm {
	return &LayerNorm{Eps: eps, Weight: w.Tensor("weight", dim), Bias: w.Tensor("bias", dim)}
}

// Forward normalizes x over its last axis.
func (l *LayerNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return x.LayerNorm(l.Weight, l.Bias, l.Eps)
}
