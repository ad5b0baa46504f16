package tensor

// Softmax normalizes over the last axis.
func (t *Tensor) Softmax() *Tensor {
	cols := t.Dim(-1)
	out := t.derive(t.b.Softmax(t.buf, t.Numel()/cols, cols), t.shape)
	record(OpSoftmax, out, []*Tensor{t}, nil, nil)
	return out
}

// GEGLU splits the last axis into halves h and g and returns h·GELU(g)
// (the feed-forward gate of the SD transformer, diffusers' GEGLU).
func (t *Tensor) GEGLU() *Tensor {
	cols2 := t.Dim(-1)
	if cols2%2 != 0 {
		panic("tensor: geglu: last axis of " + t.shape.String() + " is odd")
	}
	shape := t.Shape()
	shape[len(shape)-1] = cols2 / 2
	out := t.derive(t.b.GEGLU(t.buf, t.Numel()/cols2, cols2/2), shape)
	record(OpGEGLU, out, []*Tensor{t}, nil, nil)
	return out
}
