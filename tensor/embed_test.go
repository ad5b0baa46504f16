package tensor_test

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

func TestTimestepEmbedding(t *testing.T) {
	b := cpu.New()
	// dim 6, half 3, shift 1: freq_i = 10000^(-i/2) = 1, 0.01, 0.0001.
	got := tensor.TimestepEmbedding(b, tensor.Float64, []float64{0, 981}, 6, true, 1, 10000)
	want := make([]float64, 12)
	for i, f := range []float64{1, 0.01, 0.0001} {
		a := float64(float32(981) * float32(f))
		want[i], want[3+i] = 1, 0 // t = 0: cos 0, sin 0 (cos first: flipSinToCos)
		want[6+i], want[9+i] = math.Cos(a), math.Sin(a)
	}
	backendtest.AssertCloseValues(t, got.Float64s(), want, 1e-6)
	if !got.Shape().Equal(tensor.Shape{2, 6}) {
		t.Fatalf("shape %v", got.Shape())
	}
}
