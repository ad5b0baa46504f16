package pipeline

import (
	"errors"
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// ErrNonFinite is wrapped when a model's output holds NaN or Inf: left alone,
// it becomes a black image and exit status 0.
var ErrNonFinite = errors.New("not finite")

// CheckFinite returns an error when t holds NaN or Inf. what names the value
// ("the UNet's noise prediction at step 1"), component the model that produced
// it ("unet", "vae", "text encoder"); the error then says where the values
// came from: that model's weights (naming the first bad tensor), or, when they
// are finite, an overflow in the compute dtype (an OverflowError). It copies t
// to the host, so callers check the small tensors a generation passes through,
// not every one.
func (m *Model) CheckFinite(t *tensor.Tensor, what, component string) error {
	i, v := firstNonFinite(t.Float32s())
	if i < 0 {
		return nil
	}
	return fmt.Errorf("pipeline: %s %w (element %d is %v): %w", what, ErrNonFinite, i, v, m.blame(component))
}

// CheckInput is CheckFinite for a value the user supplied (initial latents).
func CheckInput(t *tensor.Tensor, what string) error {
	if i, v := firstNonFinite(t.Float32s()); i >= 0 {
		return fmt.Errorf("pipeline: %s %w (element %d is %v)", what, ErrNonFinite, i, v)
	}
	return nil
}

func firstNonFinite(v []float32) (int, float32) {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i, x
		}
	}
	return -1, 0
}

// blame says why a component's output went non-finite.
func (m *Model) blame(component string) error {
	if mp := m.mappings[component]; mp != nil {
		if bad, ok := mp.FirstNonFinite(); ok {
			return fmt.Errorf("the %s weights hold NaN or Inf (first: %s); the checkpoint is damaged", component, bad)
		}
	}
	return fmt.Errorf("the %s weights are finite, so %w", component, &OverflowError{m.DType})
}

// OverflowError is a non-finite value that finite weights gave: the
// computation overflowed in DType, the compute dtype (LoadOptions.DType).
// It says which dtype to compute in instead; a caller that sets the dtype
// under its own name (a command-line flag) finds DType here to name it.
type OverflowError struct{ DType tensor.DType }

func (e *OverflowError) Error() string {
	switch e.DType {
	case tensor.Float16:
		return "the computation overflowed in fp16: compute in bf16 (same speed, fp32's range) or fp32"
	case tensor.BFloat16:
		return "the computation overflowed in bf16: compute in fp32"
	}
	return fmt.Sprintf("the computation overflowed in %s (a very large guidance scale?)", e.DType)
}
