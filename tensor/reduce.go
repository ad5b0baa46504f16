package tensor

import (
	"fmt"
	"slices"
)

type reduceAttr struct{ axis int }

// sumAxis sums over one axis, keeping it with size 1 when keep is set.
func (t *Tensor) sumAxis(axis int, keep bool) *Tensor {
	outer, n, inner := t.shape.split(axis)
	shape := t.Shape()
	shape[axis] = 1
	out := t.derive(t.b.ReduceSum(t.buf, outer, n, inner), shape)
	record(OpReduceSum, out, []*Tensor{t}, nil, reduceAttr{axis})
	if !keep {
		out = out.Reshape(slices.Delete(shape, axis, axis+1)...)
	}
	return out
}

// Sum sums over the given axes and removes them; with no axes it sums everything into a scalar.
func (t *Tensor) Sum(axes ...int) *Tensor {
	if len(axes) == 0 {
		return t.Reshape(t.Numel()).sumAxis(0, false)
	}
	norm := make([]int, len(axes))
	for i, a := range axes {
		norm[i] = t.shape.axis("sum", a)
	}
	slices.Sort(norm)
	if len(slices.Compact(slices.Clone(norm))) != len(norm) {
		panic(fmt.Sprintf("tensor: sum: repeated axis in %v", axes))
	}
	out := t
	for i := len(norm) - 1; i >= 0; i-- {
		out = out.sumAxis(norm[i], false)
	}
	return out
}

// Mean averages over the given axes (all of them when none are given).
func (t *Tensor) Mean(axes ...int) *Tensor {
	s := t.Sum(axes...)
	return s.Scale(float64(s.Numel()) / float64(t.Numel()))
}

// BroadcastTo repeats t along axes of size 1 (and new leading axes) to reach shape.
func (t *Tensor) BroadcastTo(shape ...int) *Tensor {
	s := Shape(shape)
	if got, err := BroadcastShapes(t.shape, s); err != nil || !got.Equal(s) {
		panic(fmt.Sprintf("tensor: broadcast_to: %v to %v", t.shape, s))
	}
	out := t
	if d := len(s) - t.Rank(); d > 0 {
		lead := make([]int, d, len(s))
		for i := range lead {
			lead[i] = 1
		}
		out = out.Reshape(append(lead, t.shape...)...)
	}
	for axis := range s {
		if out.shape[axis] == s[axis] {
			continue
		}
		outer, _, inner := out.shape.split(axis)
		next := out.Shape()
		next[axis] = s[axis]
		e := out.derive(out.b.Expand(out.buf, outer, s[axis], inner), next)
		record(OpExpand, e, []*Tensor{out}, nil, reduceAttr{axis})
		out = e
	}
	return out
}
