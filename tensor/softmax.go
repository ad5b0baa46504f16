package tensor

import "fmt"

// Softmax normalizes over the last axis.
func (t *Tensor) Softmax() *Tensor {
	cols := t.Dim(-1)
	out := t.derive(t.b.Softmax(t.buf, t.Numel()/cols, cols), t.shape)
	record(OpSoftmax, out, []*Tensor{t}, nil, nil)
	return out
}

// GEGLU splits the last axis into halves h and g and returns h·GELU(g)
// (the feed-forward gate of the SD transformer, diffusers' GEGLU).
func (t *Tensor) GEGLU() *Tensor { return t.GEGLUBias(nil) }

// GEGLUBias is t.Add(bias).GEGLU() for a bias over the last axis (nil: none)
// in one pass: the sum is rounded to t's dtype as Add rounds it, so the
// result is the composed ops' exactly, without the sum written to memory.
// The feed-forward multiplies without its bias and adds it here.
func (t *Tensor) GEGLUBias(bias *Tensor) *Tensor {
	cols2 := t.Dim(-1)
	if cols2%2 != 0 {
		panic("tensor: geglu: last axis of " + t.shape.String() + " is odd")
	}
	var bb Buffer
	if bias != nil {
		if bias.Rank() != 1 || bias.shape[0] != cols2 || bias.DType() != t.DType() {
			panic(fmt.Sprintf("tensor: geglu: bias %v %s for input %v %s", bias.shape, bias.DType(), t.shape, t.DType()))
		}
		requireUntracked("geglu", bias)
		bb = bias.buf
	}
	shape := t.Shape()
	shape[len(shape)-1] = cols2 / 2
	out := t.derive(t.b.GEGLU(t.buf, bb, t.Numel()/cols2, cols2/2), shape)
	record(OpGEGLU, out, []*Tensor{t, bias}, nil, nil)
	return out
}
