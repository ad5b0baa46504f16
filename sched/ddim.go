package sched

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// ddim is DDIMScheduler with eta = 0 (deterministic), diffusers' scheduling_ddim.py.
type ddim struct{ alphaSchedule }

func newDDIM(c Config, steps int) (Scheduler, error) {
	a, err := newAlphaSchedule(c, steps)
	return &ddim{a}, err
}

// Step: x_prev = √ᾱ_prev·x̂₀ + √(1-ᾱ_prev)·ε̂, with prev = t - T/steps.
func (s *ddim) Step(out, latent *tensor.Tensor, step int) *tensor.Tensor {
	t := int(s.timesteps[step])
	a, aPrev := s.acp[t], s.alphaProd(t-s.stride)
	x0, eps := predictedX0Eps(s.c.PredictionType, out, latent, a)
	if s.c.ClipSample {
		x0 = clamp(x0, s.c.ClipSampleRange)
	}
	return x0.Scale(sqrt(aPrev)).Add(eps.Scale(sqrt(1 - aPrev)))
}

func sqrt(x float64) float64 { return math.Sqrt(x) }

// clamp limits x to [-r, r] (DDIM's clip_sample) on the host.
func clamp(x *tensor.Tensor, r float64) *tensor.Tensor {
	v := x.Float64s()
	for i := range v {
		v[i] = math.Max(-r, math.Min(r, v[i]))
	}
	return tensor.FromFloat64(x.Backend(), x.DType(), x.Shape(), v)
}
