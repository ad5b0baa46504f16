package backendtest

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func testReduceSumForward(t *testing.T, f forward) {
	xv, x := f.host(18, 2, 3, 4)
	sum := make([]float64, 8)
	for i, v := range xv {
		sum[(i/12)*4+i%4] += v
	}
	f.check(t, x.Sum(1), tensor.Shape{2, 4}, sum)
}
