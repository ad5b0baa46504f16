package sched

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// ddim is DDIMScheduler with eta = 0 (deterministic), diffusers' scheduling_ddim.py.
type ddim struct {
	c         Config
	acp       []float64
	final     float64 // ᾱ used past t = 0 (set_alpha_to_one)
	timesteps []float64
	stride    int
}

func newDDIM(c Config, steps int) (Scheduler, error) {
	spacing := c.TimestepSpacing
	if spacing == "" {
		spacing = "leading"
	}
	ts, err := spaced(spacing, c.NumTrainTimesteps, steps, c.StepsOffset)
	if err != nil {
		return nil, err
	}
	for i := range ts {
		ts[i] = roundSpacing(spacing, ts[i])
	}
	acp := c.alphasCumprod()
	final := acp[0]
	if c.SetAlphaToOne {
		final = 1
	}
	return &ddim{c: c, acp: acp, final: final, timesteps: ts, stride: c.NumTrainTimesteps / steps}, nil
}

// roundSpacing applies the integer rounding diffusers does after spacing.
func roundSpacing(spacing string, t float64) float64 {
	if spacing == "linspace" {
		return math.RoundToEven(t)
	}
	return t
}

func (s *ddim) Timesteps() []float64    { return s.timesteps }
func (s *ddim) InitNoiseSigma() float64 { return 1 }
func (s *ddim) ScaleModelInput(latent *tensor.Tensor, _ int) *tensor.Tensor {
	return latent
}
func (s *ddim) GuidanceScale(step int) float64 { return sqrt(1 - s.acp[int(s.timesteps[step])]) }

func (s *ddim) alphaProd(t int) float64 {
	if t < 0 {
		return s.final
	}
	return s.acp[t]
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
