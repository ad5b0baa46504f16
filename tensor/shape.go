package tensor

import (
	"fmt"
	"strings"
)

// Shape lists the sizes of a tensor's axes, outermost first.
type Shape []int

// Numel is the number of elements (1 for a scalar).
func (s Shape) Numel() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Equal reports whether both shapes have the same axes.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy that the caller may modify.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// String formats the shape as [2 4 64 64].
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// axis turns a possibly negative axis into an index, panicking when it is out of range.
func (s Shape) axis(op string, a int) int {
	if a < 0 {
		a += len(s)
	}
	if a < 0 || a >= len(s) {
		panic(fmt.Sprintf("tensor: %s: axis %d out of range for shape %v", op, a, s))
	}
	return a
}

// split returns the product of the axes before a, the size of a, and the product after it.
func (s Shape) split(a int) (outer, n, inner int) {
	outer, inner = 1, 1
	for i, d := range s {
		switch {
		case i < a:
			outer *= d
		case i > a:
			inner *= d
		}
	}
	return outer, s[a], inner
}

// Strides are the row-major element strides of a contiguous tensor of this shape.
func (s Shape) Strides() []int {
	st := make([]int, len(s))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= s[i]
	}
	return st
}

// BroadcastShapes returns the NumPy-style broadcast of a and b.
func BroadcastShapes(a, b Shape) (Shape, error) {
	n := max(len(a), len(b))
	out := make(Shape, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// broadcastStrides gives the strides of a tensor of shape in over the broadcast shape out,
// with 0 on every axis where in is broadcast.
func broadcastStrides(in, out Shape) []int {
	st := make([]int, len(out))
	inStrides := in.Strides()
	off := len(out) - len(in)
	for i := range out {
		j := i - off
		if j >= 0 && in[j] != 1 {
			st[i] = inStrides[j]
		}
	}
	return st
}
