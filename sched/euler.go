package sched

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// euler is EulerDiscreteScheduler without churn (deterministic), diffusers'
// scheduling_euler_discrete.py: σ interpolated linearly in the timestep.
type euler struct {
	c         Config
	timesteps []float64
	sigmas    []float64 // steps+1 entries, the last 0
	h         history
}

func newEuler(c Config, steps int) (Scheduler, error) {
	spacing := c.TimestepSpacing
	if spacing == "" {
		spacing = "linspace"
	}
	ts, err := spaced(spacing, c.NumTrainTimesteps, steps, c.StepsOffset)
	if err != nil {
		return nil, err
	}
	acp := c.alphasCumprod()
	// σ_t = √((1-ᾱ)/ᾱ) in float32, as diffusers keeps it.
	base := make([]float64, len(acp))
	for i, a := range acp {
		base[i] = float64(float32(math.Sqrt(float64(float32((1 - a) / a)))))
	}
	sig := make([]float64, steps+1)
	for i := range ts {
		ts[i] = float64(float32(ts[i])) // the schedule is float32 in diffusers
		sig[i] = float64(float32(interp(ts[i], base)))
	}
	return &euler{c: c, timesteps: ts, sigmas: sig}, nil
}

// interp is np.interp(t, arange(len(ys)), ys).
func interp(t float64, ys []float64) float64 {
	if t <= 0 {
		return ys[0]
	}
	if t >= float64(len(ys)-1) {
		return ys[len(ys)-1]
	}
	i := int(t)
	f := t - float64(i)
	return ys[i] + f*(ys[i+1]-ys[i])
}

func (s *euler) Timesteps() []float64 { return s.timesteps }

// InitNoiseSigma is the largest σ (linspace and trailing spacing) or √(σ²+1) (leading).
func (s *euler) InitNoiseSigma() float64 {
	m := 0.0
	for _, v := range s.sigmas {
		m = math.Max(m, v)
	}
	if s.c.TimestepSpacing == "leading" {
		return math.Sqrt(m*m + 1)
	}
	return m
}

func (s *euler) ScaleModelInput(latent *tensor.Tensor, step int) *tensor.Tensor {
	return latent.Scale(s.inputScale(step))
}

// inputScale is 1/√(σ²+1).
func (s *euler) inputScale(step int) float64 {
	sg := s.sigmas[step]
	return 1 / math.Sqrt(sg*sg+1)
}

// GradientStepScale is σ².
func (s *euler) GradientStepScale(step int) float64 { return s.sigmas[step] * s.sigmas[step] }

func (s *euler) Slots() int   { return 1 }
func (s *euler) linear() bool { return true }

func (s *euler) Step(out, latent *tensor.Tensor, step int) *tensor.Tensor {
	return s.h.step(s, out, latent, step)
}

// Coefficients: x̂₀ from the prediction, the derivative d = (x - x̂₀)/σ,
// x_next = x + d·(σ_next - σ), written out: with ε, d is ε; with v,
// x̂₀ = -σ/√(σ²+1)·v + x/(σ²+1), so d = σ/(σ²+1)·x + v/√(σ²+1).
func (s *euler) Coefficients(step int) Coefficients {
	sg, next := s.sigmas[step], s.sigmas[step+1]
	dt := next - sg
	m := identity(1)
	if s.c.PredictionType == VPrediction {
		m[0][0], m[0][1] = 1+dt*sg/(sg*sg+1), dt/math.Sqrt(sg*sg+1)
	} else {
		m[0][1] = dt
	}
	return Coefficients{Input: s.inputScale(step), Step: m}
}
