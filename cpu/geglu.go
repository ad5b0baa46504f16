package cpu

import "github.com/rfnet/rfnet-native/tensor"

// geglu: each row of x [rows, 2·cols] is [h | g]; y = h·GELU(g) (diffusers' GEGLU
// chunks the projection in this order).
func (kern[T]) geglu(xb tensor.Buffer, rows, cols int) tensor.Buffer {
	x := vals[T]("geglu", xb)
	y := make([]T, rows*cols)
	parallelFor(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			h, g := x[2*r*cols:][:cols], x[(2*r+1)*cols:][:cols]
			dst := y[r*cols:][:cols]
			for i := range dst {
				dst[i] = T(float64(h[i]) * gelu(float64(g[i])))
			}
		}
	})
	return wrap(y)
}

func (kern[T]) gegluBackward(xb, dyb tensor.Buffer, rows, cols int) tensor.Buffer {
	x, dy := vals[T]("geglu backward", xb), vals[T]("geglu backward", dyb)
	dx := make([]T, len(x))
	parallelFor(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			h, g := x[2*r*cols:][:cols], x[(2*r+1)*cols:][:cols]
			dh, dg := dx[2*r*cols:][:cols], dx[(2*r+1)*cols:][:cols]
			d := dy[r*cols:][:cols]
			for i := range d {
				gi := float64(g[i])
				dh[i] = T(float64(d[i]) * gelu(gi))
				dg[i] = T(float64(d[i]) * float64(h[i]) * geluDeriv(gi))
			}
		}
	})
	return wrap(dx)
}
