package tensor_test

import (
	"errors"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// The CPU records nothing: CaptureCall says so (the caller runs eagerly)
// without running the call, and a nil Call closes.
func TestCaptureCallUnsupportedOnCPU(t *testing.T) {
	b := cpu.New()
	x := tensor.FromFloat64(b, tensor.Float32, tensor.Shape{2}, []float64{1, 2})
	ran := false
	call, first, err := tensor.CaptureCall(b, func(in []*tensor.Tensor) *tensor.Tensor { ran = true; return in[0].Affine(2, 0) }, x)
	if !errors.Is(err, tensor.ErrUnsupported) || call != nil || first != nil || ran {
		t.Fatalf("CaptureCall on the CPU: %v, %v, %v, ran %v; want ErrUnsupported, nil, nil, not run", call, first, err, ran)
	}
	call.Close()
	c := tensor.CountFLOPs(b)
	if call, _, err := tensor.CaptureCall(c, func(in []*tensor.Tensor) *tensor.Tensor { ran = true; return in[0] }, x.Move(c)); !errors.Is(err, tensor.ErrUnsupported) || call != nil || ran {
		t.Fatalf("CaptureCall on a counter around the CPU: %v, %v, ran %v; want ErrUnsupported, nil, not run", call, err, ran)
	}
}
