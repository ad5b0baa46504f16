package tensor

import "fmt"

type narrowAttr struct{ axis, start int }

// Reshape returns the same elements with a new shape; one axis may be -1.
// It shares the buffer (tensors are contiguous).
func (t *Tensor) Reshape(shape ...int) *Tensor {
	s := Shape(shape).Clone()
	infer := -1
	known := 1
	for i, d := range s {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			panic(fmt.Sprintf("tensor: reshape: %v to %v", t.shape, shape))
		default:
			known *= d
		}
	}
	if infer >= 0 && known > 0 {
		s[infer] = t.Numel() / known
	}
	if s.Numel() != t.Numel() {
		panic(fmt.Sprintf("tensor: reshape: %v to %v", t.shape, shape))
	}
	out := t.derive(t.buf, s)
	record(OpReshape, out, []*Tensor{t}, nil, nil)
	return out
}

// Permute reorders the axes: axis i of the result is axis perm[i] of t.
func (t *Tensor) Permute(perm ...int) *Tensor {
	if len(perm) != t.Rank() {
		panic(fmt.Sprintf("tensor: permute: %v of shape %v", perm, t.shape))
	}
	seen := make([]bool, len(perm))
	shape := make(Shape, len(perm))
	identity := true
	for i, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			panic(fmt.Sprintf("tensor: permute: %v is not a permutation", perm))
		}
		seen[p] = true
		shape[i] = t.shape[p]
		identity = identity && p == i
	}
	if identity {
		return t
	}
	out := t.derive(t.b.Permute(t.buf, t.shape, perm), shape)
	record(OpPermute, out, []*Tensor{t}, nil, append([]int(nil), perm...))
	return out
}

// Transpose swaps axes a and b.
func (t *Tensor) Transpose(a, b int) *Tensor {
	a, b = t.shape.axis("transpose", a), t.shape.axis("transpose", b)
	perm := make([]int, t.Rank())
	for i := range perm {
		perm[i] = i
	}
	perm[a], perm[b] = b, a
	return t.Permute(perm...)
}

// Narrow returns the slice [start, start+size) of axis as a contiguous copy.
func (t *Tensor) Narrow(axis, start, size int) *Tensor {
	axis = t.shape.axis("narrow", axis)
	if start < 0 || size < 0 || start+size > t.shape[axis] {
		panic(fmt.Sprintf("tensor: narrow: [%d, %d) of axis %d of shape %v", start, start+size, axis, t.shape))
	}
	if start == 0 && size == t.shape[axis] {
		return t
	}
	outer, n, inner := t.shape.split(axis)
	shape := t.Shape()
	shape[axis] = size
	out := t.derive(t.b.Slice(t.buf, outer, n*inner, start*inner, size*inner), shape)
	record(OpNarrow, out, []*Tensor{t}, nil, narrowAttr{axis, start})
	return out
}

// Chunk splits axis into n equal parts.
func (t *Tensor) Chunk(n, axis int) []*Tensor {
	axis = t.shape.axis("chunk", axis)
	if t.shape[axis]%n != 0 {
		panic(fmt.Sprintf("tensor: chunk: axis %d of %v into %d parts", axis, t.shape, n))
	}
	size := t.shape[axis] / n
	parts := make([]*Tensor, n)
	for i := range parts {
		parts[i] = t.Narrow(axis, i*size, size)
	}
	return parts
}

// Concat joins tensors along axis; all other axes must match.
func Concat(axis int, ts ...*Tensor) *Tensor {
	if len(ts) == 0 {
		panic("tensor: concat: no tensors")
	}
	if len(ts) == 1 {
		return ts[0]
	}
	first := ts[0]
	axis = first.shape.axis("concat", axis)
	shape := first.Shape()
	shape[axis] = 0
	bufs := make([]Buffer, len(ts))
	inners := make([]int, len(ts))
	outer, _, inner := first.shape.split(axis)
	for i, x := range ts {
		if x.Rank() != first.Rank() || x.DType() != first.DType() {
			panic(fmt.Sprintf("tensor: concat: %v (%s) with %v (%s)", first.shape, first.DType(), x.shape, x.DType()))
		}
		for j := range shape {
			if j != axis && x.shape[j] != first.shape[j] {
				panic(fmt.Sprintf("tensor: concat along %d: shapes %v and %v", axis, first.shape, x.shape))
			}
		}
		shape[axis] += x.shape[axis]
		bufs[i] = x.buf
		inners[i] = x.shape[axis] * inner
	}
	out := first.derive(first.b.Concat(bufs, outer, inners), shape)
	record(OpConcat, out, ts, nil, axis)
	return out
}
