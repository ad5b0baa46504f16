package backendtest

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// testLayoutForward checks Permute, Slice (through Narrow) and Concat.
func testLayoutForward(t *testing.T, f forward) {
	xv, x := f.host(18, 2, 3, 4)
	perm := make([]float64, 0, 24)
	for k := 0; k < 4; k++ {
		for i := 0; i < 2; i++ {
			for j := 0; j < 3; j++ {
				perm = append(perm, xv[(i*3+j)*4+k])
			}
		}
	}
	f.check(t, x.Permute(2, 0, 1), tensor.Shape{4, 2, 3}, perm)
	nar := make([]float64, 0, 12)
	for i := 0; i < 2; i++ {
		nar = append(nar, xv[i*12+4:i*12+12]...)
	}
	f.check(t, x.Narrow(1, 1, 2), tensor.Shape{2, 2, 4}, nar)
	cat := make([]float64, 0, 48)
	for i := 0; i < 2; i++ {
		cat = append(cat, xv[i*12:(i+1)*12]...)
		cat = append(cat, xv[i*12:(i+1)*12]...)
	}
	f.check(t, tensor.Concat(1, x, x), tensor.Shape{2, 6, 4}, cat)
}
