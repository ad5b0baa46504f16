package tensor

import "fmt"

// Conv2d convolves x [N, C, H, W] with w [O, C, KH, KW] (same stride and zero
// padding on both axes) and adds bias [O] when it is not nil.
func (t *Tensor) Conv2d(w, bias *Tensor, stride, pad int) *Tensor {
	return t.conv2d(w, bias, nil, stride, pad)
}

// Conv2dAdd is residual + Conv2d(w, bias, stride, pad), residual of the
// output's shape: a ResNet block's skip connection. Untracked, the backend
// adds the residual where it accumulates the product (one pass over the
// output fewer); on the tape it is the convolution and an Add.
func (t *Tensor) Conv2dAdd(w, bias, residual *Tensor, stride, pad int) *Tensor {
	if t.Tracked() || residual.Tracked() {
		return t.Conv2d(w, bias, stride, pad).Add(residual)
	}
	return t.conv2d(w, bias, residual, stride, pad)
}

func (t *Tensor) conv2d(w, bias, residual *Tensor, stride, pad int) *Tensor {
	if t.Rank() != 4 || w.Rank() != 4 || t.shape[1] != w.shape[1] || stride < 1 || pad < 0 {
		panic(fmt.Sprintf("tensor: conv2d: input %v, weight %v, stride %d, pad %d", t.shape, w.shape, stride, pad))
	}
	if bias != nil && (bias.Rank() != 1 || bias.shape[0] != w.shape[0]) {
		panic(fmt.Sprintf("tensor: conv2d: bias %v for weight %v", bias.shape, w.shape))
	}
	requireUntracked("conv2d", w, bias)
	p := Conv2dParams{N: t.shape[0], C: t.shape[1], H: t.shape[2], W: t.shape[3],
		O: w.shape[0], KH: w.shape[2], KW: w.shape[3], Stride: stride, Pad: pad}
	if p.OutH() < 1 || p.OutW() < 1 {
		panic(fmt.Sprintf("tensor: conv2d: input %v too small for kernel %v with pad %d", t.shape, w.shape, pad))
	}
	shape := Shape{p.N, p.O, p.OutH(), p.OutW()}
	var bb, rb Buffer
	if bias != nil {
		bb = bias.buf
	}
	if residual != nil {
		if !residual.shape.Equal(shape) || residual.DType() != t.DType() {
			panic(fmt.Sprintf("tensor: conv2d: residual %v %s for output %v %s", residual.shape, residual.DType(), shape, t.DType()))
		}
		rb = residual.buf
	}
	out := t.derive(t.b.Conv2d(t.buf, w.buf, bb, rb, p), shape)
	record(OpConv2d, out, []*Tensor{t, w, bias}, nil, p)
	return out
}
