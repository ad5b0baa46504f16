package cpu

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// combine: y[r, i] = Σ_j coef[r, j]·x[j, i] for x [k, n], accumulated in T
// in j order (the order kernels/combine.cu sums in).
func (kern[T]) combine(coefb, xb tensor.Buffer, rows, k, n int) tensor.Buffer {
	coef, x := vals[T]("combine", coefb), vals[T]("combine", xb)
	if len(coef) != rows*k || len(x) != k*n {
		panic(fmt.Sprintf("cpu: combine: %d coefficients and %d elements for %d rows of %d slices of %d", len(coef), len(x), rows, k, n))
	}
	y := make([]T, rows*n)
	parallelFor(n, elemGrain, func(lo, hi int) {
		for r := 0; r < rows; r++ {
			c, out := coef[r*k:(r+1)*k], y[r*n:(r+1)*n]
			for i := lo; i < hi; i++ {
				var acc T
				for j, cj := range c {
					acc += cj * x[j*n+i]
				}
				out[i] = acc
			}
		}
	})
	return wrap(y)
}
