package rfnet

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
)

// A non-finite steering loss points at the config, and in half precision at
// a wider compute dtype too (as a pipeline.OverflowError, whose DType a
// caller names in its own terms); it never names a command-line flag.
func TestSteeringLossErrorSaysWhatToChange(t *testing.T) {
	for _, c := range []struct {
		dtype    tensor.DType
		overflow string // "" where no wider dtype exists
	}{
		{tensor.Float16, "compute in bf16 (same speed, fp32's range) or fp32"},
		{tensor.BFloat16, "compute in fp32"},
		{tensor.Float32, ""},
	} {
		t.Run(c.dtype.String(), func(t *testing.T) {
			r := &runner{Model: &pipeline.Model{DType: c.dtype}}
			err := r.lossError(2, math.NaN())
			msg := err.Error()
			if !errors.Is(err, pipeline.ErrNonFinite) || !strings.Contains(msg, "step 3: the steering loss is NaN") ||
				!strings.Contains(msg, "loss weights and scales") || strings.Contains(msg, "--") {
				t.Fatalf("%q", msg)
			}
			var overflow *pipeline.OverflowError
			switch {
			case c.overflow == "" && errors.As(err, &overflow):
				t.Fatalf("%q: an overflow in %s, which has no wider dtype", msg, c.dtype)
			case c.overflow != "" && (!errors.As(err, &overflow) || overflow.DType != c.dtype || !strings.Contains(msg, c.overflow)):
				t.Fatalf("%q, want an OverflowError of %s saying %q", msg, c.dtype, c.overflow)
			}
		})
	}
}
