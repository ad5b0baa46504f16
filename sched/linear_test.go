package sched

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// Every scheduler is Linear except DDIM with clip_sample, whose Step clamps
// x̂₀ (and equals the linear step where nothing is clamped).
func TestLinearSchedulers(t *testing.T) {
	for _, name := range []string{"ddim", "pndm", "euler", "dpm++2m"} {
		s, err := New(name, SD(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := AsLinear(s); !ok {
			t.Errorf("%s is not linear", name)
		}
	}
	clip := SD()
	clip.ClipSample, clip.ClipSampleRange = true, 1
	clipped, err := New("ddim", clip, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := AsLinear(clipped); ok {
		t.Fatal("DDIM with clip_sample taken as linear")
	}
	plain, _ := New("ddim", SD(), 10)
	b := cpu.New()
	// x̂₀ = (x - √(1-ᾱ)·ε)/√ᾱ at the first step: small inputs stay inside ±1, large ones do not.
	for _, c := range []struct {
		v       float64
		clamped bool
	}{{0.01, false}, {10, true}} {
		x := tensor.FromFloat64(b, tensor.Float64, tensor.Shape{1, 4}, []float64{c.v, -c.v, c.v / 2, 0})
		eps := tensor.FromFloat64(b, tensor.Float64, tensor.Shape{1, 4}, []float64{c.v / 100, c.v / 50, -c.v / 30, c.v / 25})
		got, want := clipped.Step(eps, x, 0).Float64s(), plain.Step(eps, x, 0).Float64s()
		same := true
		for i := range got {
			same = same && math.Abs(got[i]-want[i]) <= 1e-12*math.Max(1, math.Abs(want[i]))
		}
		if same == c.clamped {
			t.Errorf("inputs of %g: clipped step %v, linear step %v", c.v, got, want)
		}
	}
}
