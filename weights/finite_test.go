package weights

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func TestFirstNonFiniteRaw(t *testing.T) {
	for _, d := range []struct {
		code  string
		dtype tensor.DType
	}{{"F32", tensor.Float32}, {"F16", tensor.Float16}, {"BF16", tensor.BFloat16}, {"F64", tensor.Float64}} {
		for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			v := []float64{0, -1.5, 65000, 1e-8, bad, 2}
			if got := firstNonFiniteRaw(d.code, tensor.EncodeRaw(d.dtype, v)); got != 4 {
				t.Errorf("%s with %v at 4: found %d", d.code, bad, got)
			}
		}
		if got := firstNonFiniteRaw(d.code, tensor.EncodeRaw(d.dtype, []float64{0, -3, 1e-3, 60000})); got != -1 {
			t.Errorf("%s: finite values reported non-finite at %d", d.code, got)
		}
	}
}
