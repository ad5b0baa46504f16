package cpu

import "github.com/rfnet/rfnet-native/tensor"

// reduceSum sums x [outer, n, inner] over n, accumulating in float64.
func (kern[T]) reduceSum(xb tensor.Buffer, outer, n, inner int) tensor.Buffer {
	x := vals[T]("reduce_sum", xb)
	out := make([]T, outer*inner)
	parallelFor(outer, 1, func(lo, hi int) {
		acc := make([]float64, inner)
		for o := lo; o < hi; o++ {
			clear(acc)
			for j := 0; j < n; j++ {
				row := x[(o*n+j)*inner:][:inner]
				for i, v := range row {
					acc[i] += float64(v)
				}
			}
			dst := out[o*inner:][:inner]
			for i, v := range acc {
				dst[i] = T(v)
			}
		}
	})
	return wrap(out)
}
