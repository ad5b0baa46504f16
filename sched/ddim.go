package sched

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// ddim is DDIMScheduler with eta = 0 (deterministic), diffusers' scheduling_ddim.py.
type ddim struct {
	alphaSchedule
	h history
}

func newDDIM(c Config, steps int) (Scheduler, error) {
	a, err := newAlphaSchedule(c, steps)
	return &ddim{alphaSchedule: a}, err
}

func (s *ddim) Slots() int { return 1 }

// linear: clip_sample clamps x̂₀ between the two halves of the step.
func (s *ddim) linear() bool { return !s.c.ClipSample }

// Coefficients: x_prev = √ᾱ_prev·x̂₀ + √(1-ᾱ_prev)·ε̂ with prev = t - T/steps,
// x̂₀ and ε̂ from the prediction (predictedX0Eps) written out.
func (s *ddim) Coefficients(step int) Coefficients {
	t := int(s.timesteps[step])
	a, aPrev := s.acp[t], s.alphaProd(t-s.stride)
	sa, sb, pa, pb := sqrt(a), sqrt(1-a), sqrt(aPrev), sqrt(1-aPrev)
	m := identity(1)
	if s.c.PredictionType == VPrediction { // x̂₀ = √ᾱ·x - √(1-ᾱ)·v, ε̂ = √ᾱ·v + √(1-ᾱ)·x
		m[0][0], m[0][1] = pa*sa+pb*sb, pb*sa-pa*sb
	} else { // x̂₀ = (x - √(1-ᾱ)·ε)/√ᾱ
		m[0][0], m[0][1] = pa/sa, pb-pa*sb/sa
	}
	return Coefficients{Input: 1, Step: m}
}

func (s *ddim) Step(out, latent *tensor.Tensor, step int) *tensor.Tensor {
	if s.linear() {
		return s.h.step(s, out, latent, step)
	}
	t := int(s.timesteps[step])
	a, aPrev := s.acp[t], s.alphaProd(t-s.stride)
	x0, eps := predictedX0Eps(s.c.PredictionType, out, latent, a)
	x0 = clamp(x0, s.c.ClipSampleRange)
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
