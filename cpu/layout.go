package cpu

import "github.com/rfnet/rfnet-native/tensor"

// permute walks the output row by row; along the output's last axis the input
// advances by a fixed stride, so each row is one strided copy.
func (kern[T]) permute(xb tensor.Buffer, shape tensor.Shape, perm []int) tensor.Buffer {
	x := vals[T]("permute", xb)
	inStrides := shape.Strides()
	r := len(perm)
	outShape := make([]int, r)
	stride := make([]int, r) // input stride of each output axis
	for i, p := range perm {
		outShape[i] = shape[p]
		stride[i] = inStrides[p]
	}
	out := make([]T, len(x))
	inner := outShape[r-1]
	rows := len(x) / max(inner, 1)
	parallelFor(rows, max(1, elemGrain/max(inner, 1)), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			off, rem := 0, row
			for ax := r - 2; ax >= 0; ax-- {
				off += (rem % outShape[ax]) * stride[ax]
				rem /= outShape[ax]
			}
			dst := out[row*inner : (row+1)*inner]
			s := stride[r-1]
			for j := range dst {
				dst[j] = x[off+j*s]
			}
		}
	})
	return wrap(out)
}

func (kern[T]) concat(xs []tensor.Buffer, outer int, inners []int) tensor.Buffer {
	total := 0
	for _, n := range inners {
		total += n
	}
	out := make([]T, outer*total)
	parts := make([][]T, len(xs))
	for i, xb := range xs {
		parts[i] = vals[T]("concat", xb)
	}
	parallelFor(outer, 1, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			dst := out[o*total:]
			for i, part := range parts {
				dst = dst[copy(dst, part[o*inners[i]:(o+1)*inners[i]]):]
			}
		}
	})
	return wrap(out)
}

func (kern[T]) slice(xb tensor.Buffer, outer, inner, start, size int) tensor.Buffer {
	x := vals[T]("slice", xb)
	out := make([]T, outer*size)
	for o := 0; o < outer; o++ {
		copy(out[o*size:(o+1)*size], x[o*inner+start:])
	}
	return wrap(out)
}

func (kern[T]) sliceBackward(dyb tensor.Buffer, outer, inner, start, size int) tensor.Buffer {
	dy := vals[T]("slice backward", dyb)
	dx := make([]T, outer*inner)
	for o := 0; o < outer; o++ {
		copy(dx[o*inner+start:], dy[o*size:(o+1)*size])
	}
	return wrap(dx)
}

func (kern[T]) expand(xb tensor.Buffer, outer, n, inner int) tensor.Buffer {
	x := vals[T]("expand", xb)
	out := make([]T, outer*n*inner)
	parallelFor(outer, 1, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			src := x[o*inner:][:inner]
			for j := 0; j < n; j++ {
				copy(out[(o*n+j)*inner:], src)
			}
		}
	})
	return wrap(out)
}
