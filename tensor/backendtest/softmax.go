package backendtest

import (
	"math"
	"testing"
)

func testSoftmaxForward(t *testing.T, f forward) {
	xv, x := f.host(16, 3, 77)
	f.check(t, x.Softmax(), x.Shape(), refSoftmax(xv, 77))
}

func refSoftmax(x []float64, cols int) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < len(x)/cols; r++ {
		s := 0.0
		for i := 0; i < cols; i++ {
			s += math.Exp(x[r*cols+i])
		}
		for i := 0; i < cols; i++ {
			out[r*cols+i] = math.Exp(x[r*cols+i]) / s
		}
	}
	return out
}
