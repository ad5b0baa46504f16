package backendtest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// RandnValues returns n standard normal values from a fixed seed, none of them zero.
func RandnValues(seed uint64, n int) []float64 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	v := make([]float64, n)
	for i := range v {
		for v[i] == 0 {
			v[i] = r.NormFloat64()
		}
	}
	return v
}

// Randn returns a tensor of standard normal values from a fixed seed.
func Randn(b tensor.Backend, d tensor.DType, seed uint64, shape ...int) *tensor.Tensor {
	return tensor.FromFloat64(b, d, shape, RandnValues(seed, tensor.Shape(shape).Numel()))
}

// Uniform returns a tensor of values uniform in [lo, hi) from a fixed seed.
func Uniform(b tensor.Backend, d tensor.DType, seed uint64, lo, hi float64, shape ...int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 0x0f0f))
	v := make([]float64, tensor.Shape(shape).Numel())
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float64()
	}
	return tensor.FromFloat64(b, d, shape, v)
}

// AssertClose fails t unless got and want have the same shape and
// max|got-want| <= tol·max(1, max|want|). It reports the worst element.
func AssertClose(t testing.TB, got, want *tensor.Tensor, tol float64) {
	t.Helper()
	if !got.Shape().Equal(want.Shape()) {
		t.Fatalf("shape %v, want %v", got.Shape(), want.Shape())
	}
	AssertCloseValues(t, got.Float64s(), want.Float64s(), tol)
}

// AssertCloseValues is AssertClose on host slices.
func AssertCloseValues(t testing.TB, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	scale, worst, at := 1.0, 0.0, 0
	for i := range want {
		scale = math.Max(scale, math.Abs(want[i]))
		if d := math.Abs(got[i] - want[i]); d > worst || math.IsNaN(d) {
			worst, at = d, i
			if math.IsNaN(d) {
				break
			}
		}
	}
	if len(want) > 0 && !(worst <= tol*scale) {
		t.Fatalf("element %d: got %.9g, want %.9g (max abs diff %.3g > %.3g)", at, got[at], want[at], worst, tol*scale)
	}
}

// sync waits for an asynchronous backend inside the timed region, so the
// figures are of finished work.
func sync(b *testing.B, be tensor.Backend) {
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
}

func reportFLOPs(b *testing.B, perOp float64) {
	b.ReportMetric(perOp*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
