package sched

import (
	"slices"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// The schedules (timestep values) must equal diffusers' exactly; the full
// step-by-step parity runs in the pipeline tests, where a UNet drives them.
func TestTimestepsMatchReference(t *testing.T) {
	for _, c := range fixtures.Cases(t) {
		cfg, err := LoadConfig(fixtures.Path("models", c.Model, "scheduler", "scheduler_config.json"), SD())
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(c.Scheduler, cfg, c.Steps)
		if err != nil {
			t.Fatal(err)
		}
		want := fixtures.Tensors(t, c.Name)("timesteps").Float64s()
		got := s.Timesteps()
		for i := range got {
			got[i] = float64(float32(got[i]))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: timesteps %v, want %v", c.Name, got, want)
		}
	}
}

func TestSpacings(t *testing.T) {
	cfg := SD()
	for _, c := range []struct {
		sched, spacing string
		want           []float64
	}{
		{"ddim", "leading", []float64{801, 601, 401, 201, 1}},
		{"ddim", "linspace", []float64{999, 749, 500, 250, 0}},
		{"ddim", "trailing", []float64{999, 799, 599, 399, 199}},
		{"euler", "leading", []float64{801, 601, 401, 201, 1}},
		{"dpm++2m", "leading", []float64{831, 665, 499, 333, 167}},
	} {
		cfg.TimestepSpacing = c.spacing
		s, err := New(c.sched, cfg, 5)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Timesteps(); !slices.Equal(got, c.want) {
			t.Errorf("%s %s: %v, want %v", c.sched, c.spacing, got, c.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	if _, err := New("lms", SD(), 10); err == nil || !strings.Contains(err.Error(), "ddim, dpm++2m, euler, pndm") {
		t.Fatalf("unknown scheduler: %v", err)
	}
	if _, err := New("ddim", SD(), 0); err == nil {
		t.Fatal("0 steps must fail")
	}
	bad := SD()
	bad.PredictionType = "sample"
	if _, err := New("ddim", bad, 10); err == nil || !strings.Contains(err.Error(), "prediction_type") {
		t.Fatalf("unsupported prediction: %v", err)
	}
	if _, err := ParsePrediction("x0"); err == nil {
		t.Fatal("unknown prediction must fail")
	}
}
