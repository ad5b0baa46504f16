package tensor

import "testing"

// products is the Meta backend with the counted products returning empty
// buffers of their output size, so that the counter can be run on shapes alone.
type products struct{ Meta }

func (products) MatMul(a, b Buffer, p MatMulParams) Buffer {
	return metaBuf{a.DType(), p.Batch * p.M * p.N}
}
func (products) Linear(x, w, bias, residual Buffer, p LinearParams) Buffer {
	return metaBuf{x.DType(), p.Rows * p.Out}
}
func (products) Conv2d(x, w, bias, residual Buffer, p Conv2dParams) Buffer {
	return metaBuf{x.DType(), p.N * p.O * p.OutH() * p.OutW()}
}
func (products) Attention(q, k, v Buffer, p AttentionParams) Buffer {
	return metaBuf{q.DType(), q.Len()}
}

// The counter adds the products' FLOPs.
func TestFLOPCounter(t *testing.T) {
	c := CountFLOPs(products{})
	a, b := Zeros(c, Float32, 2, 3, 4), Zeros(c, Float32, 2, 4, 5)
	a.MatMul(b)
	if got := c.FLOPs(); got != 2*2*3*4*5 {
		t.Fatalf("matmul: %d FLOPs", got)
	}
	c.Reset()
	x, w := Zeros(c, Float32, 1, 3, 8, 8), Zeros(c, Float32, 6, 3, 3, 3)
	x.Conv2d(w, nil, 2, 1) // 4×4 output
	if got := c.FLOPs(); got != 2*6*4*4*3*9 {
		t.Fatalf("conv2d: %d FLOPs", got)
	}
	c.Reset()
	r := Zeros(c, Float32, 1, 6, 4, 4)
	x.Conv2dAdd(w, nil, r, 2, 1)
	if got := c.FLOPs(); got != 2*6*4*4*3*9 {
		t.Fatalf("conv2d with a residual: %d FLOPs", got)
	}
	c.Reset()
	h, lw := Zeros(c, Float32, 2, 7, 16), Zeros(c, Float32, 5, 16)
	h.LinearAdd(lw, nil, Zeros(c, Float32, 2, 7, 5))
	if got := c.FLOPs(); got != 2*14*16*5 {
		t.Fatalf("linear: %d FLOPs", got)
	}
	c.Reset()
	q, k := Zeros(c, Float32, 2, 7, 16), Zeros(c, Float32, 2, 9, 16)
	Attention(q, k, k, 0.25)
	if got := c.FLOPs(); got != 4*2*7*9*16 {
		t.Fatalf("attention: %d FLOPs", got)
	}
}
