package backendtest

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// gradTol is the largest relative L2 error allowed between the tape's gradient
// and central finite differences, both in float64.
const gradTol = 1e-6

// fdStep is the central-difference step: its truncation error (~h²) and rounding
// error (~1e-16/h) are both far below gradTol for unit-scale inputs.
const fdStep = 1e-6

// gradCase is one gradient check: f maps the inputs to an output; the inputs whose
// indices are in wrt are tracked and checked, the others are constants (weights).
type gradCase struct {
	name   string
	inputs []*tensor.Tensor
	wrt    []int
	f      func(in []*tensor.Tensor) *tensor.Tensor
}

// checkGrad compares dL/dx from the tape with central differences for the scalar
// L = Σ f(inputs)·r, r a fixed random weighting so that every output element matters.
func checkGrad(t *testing.T, b tensor.Backend, c gradCase) {
	t.Helper()
	out := c.f(c.inputs)
	r := Randn(b, tensor.Float64, 99, out.Shape()...)
	loss := func(in []*tensor.Tensor) *tensor.Tensor { return c.f(in).Mul(r).Sum() }

	_, grads := c.gradients(t, func(out *tensor.Tensor) *tensor.Tensor { return out.Mul(r).Sum() })
	for i, j := range c.wrt {
		x := c.inputs[j]
		vals := x.Float64s()
		num := make([]float64, len(vals))
		for k := range vals {
			orig := vals[k]
			eval := func(v float64) float64 {
				vals[k] = v
				in := append([]*tensor.Tensor(nil), c.inputs...)
				in[j] = tensor.FromFloat64(b, tensor.Float64, x.Shape(), vals)
				return loss(in).Item()
			}
			num[k] = (eval(orig+fdStep) - eval(orig-fdStep)) / (2 * fdStep)
			vals[k] = orig
		}
		got := grads[i].Float64s()
		if e := RelL2(got, num); !(e < gradTol) {
			t.Errorf("%s: input %d: relative error %.3g of the gradient (tape %v vs finite differences %v)", c.name, j, e, head(got), head(num))
		}
	}
}

// gradients runs f with the inputs of wrt tracked by a new tape and returns
// its output and the gradients of loss(output) with respect to them.
func (c gradCase) gradients(t *testing.T, loss func(out *tensor.Tensor) *tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
	t.Helper()
	tape := tensor.NewTape()
	in := append([]*tensor.Tensor(nil), c.inputs...)
	wrt := make([]*tensor.Tensor, len(c.wrt))
	for i, j := range c.wrt {
		in[j] = tape.Track(in[j])
		wrt[i] = in[j]
	}
	out := c.f(in)
	grads, err := tape.Backward(loss(out), wrt...)
	if err != nil {
		t.Fatal(err)
	}
	return out, grads
}

// RelL2 is ‖a-b‖₂ / ‖b‖₂ (absolute when b is all zeros).
func RelL2(a, b []float64) float64 {
	var d, n float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		n += b[i] * b[i]
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}

func head(v []float64) []float64 { return v[:min(len(v), 4)] }
