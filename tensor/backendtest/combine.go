package backendtest

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// testCombineForward: three combinations of four slices of [4, 3, 5] against
// the float64 sums, the coefficients random and non-zero (one row a single
// slice, as a scheduler's scaled model input is).
func testCombineForward(t *testing.T, f forward) {
	xv, x := f.host(63, 4, 3, 5)
	cv := RandnValues(64, 12)
	cv[4], cv[6], cv[7] = 0, 0, 0 // row 1 is cv[5]·x[1]
	coef := tensor.FromFloat64(f.b, tensor.CoefDType(f.d), tensor.Shape{3, 4}, cv)
	want := make([]float64, 3*15)
	for r := 0; r < 3; r++ {
		for i := 0; i < 15; i++ {
			for j := 0; j < 4; j++ {
				want[r*15+i] += cv[r*4+j] * xv[j*15+i]
			}
		}
	}
	f.check(t, tensor.Combine(coef, x), tensor.Shape{3, 3, 5}, want)
}
