package cpu

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// softmax subtracts each row's maximum before exponentiating; sums run in float64.
func (kern[T]) softmax(xb tensor.Buffer, rows, cols int) tensor.Buffer {
	x := vals[T]("softmax", xb)
	y := make([]T, len(x))
	parallelFor(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src, dst := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
			m := math.Inf(-1)
			for _, v := range src {
				m = math.Max(m, float64(v))
			}
			s := 0.0
			for i, v := range src {
				e := math.Exp(float64(v) - m)
				dst[i] = T(e)
				s += e
			}
			inv := 1 / s
			for i := range dst {
				dst[i] = T(float64(dst[i]) * inv)
			}
		}
	})
	return wrap(y)
}

func (kern[T]) softmaxBackward(yb, dyb tensor.Buffer, rows, cols int) tensor.Buffer {
	y, dy := vals[T]("softmax backward", yb), vals[T]("softmax backward", dyb)
	dx := make([]T, len(y))
	parallelFor(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			yr, dyr, dxr := y[r*cols:(r+1)*cols], dy[r*cols:(r+1)*cols], dx[r*cols:(r+1)*cols]
			dot := 0.0
			for i := range yr {
				dot += float64(yr[i]) * float64(dyr[i])
			}
			for i := range yr {
				dxr[i] = T(float64(yr[i]) * (float64(dyr[i]) - dot))
			}
		}
	})
	return wrap(dx)
}
