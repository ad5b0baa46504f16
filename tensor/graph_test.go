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

// On the CPU every pass of Passes runs eagerly: each one's own output, the
// passes counted (the failed one not), nothing captured, and a first pass's
// error comes back as an error.
func TestPassesEagerOnCPU(t *testing.T) {
	b := cpu.New()
	fail := errors.New("no such layer")
	var seen []int
	var p *tensor.Passes
	p = tensor.NewPasses(b, "test pass", func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		seen = append(seen, p.Calls())
		if in[0].Float64s()[0] < 0 {
			return nil, fail
		}
		return in[0].Affine(2, 1), nil
	})
	defer p.Close()
	if _, err := p.Run(tensor.FromFloat64(b, tensor.Float32, tensor.Shape{1}, []float64{-1})); !errors.Is(err, fail) || p.Calls() != 0 {
		t.Fatalf("failing pass: %v, %d calls", err, p.Calls())
	}
	for i := range 3 {
		out, err := p.Run(tensor.FromFloat64(b, tensor.Float32, tensor.Shape{1}, []float64{float64(i)}))
		if err != nil || out.Float64s()[0] != float64(2*i+1) {
			t.Fatalf("pass %d: %v, %v", i, out, err)
		}
	}
	if p.Calls() != 3 || p.Captured() || len(seen) != 4 || seen[1] != 0 || seen[3] != 2 {
		t.Fatalf("%d calls, captured %v, the passes saw %v", p.Calls(), p.Captured(), seen)
	}
	var none *tensor.Passes
	none.Close()
}
