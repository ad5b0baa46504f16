package sched

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// alphaSchedule is what DDIM and PNDM share: integer timesteps spaced over the
// training schedule ("leading" unless configured), ᾱ per training timestep,
// and an unscaled model input.
type alphaSchedule struct {
	c         Config
	acp       []float64
	final     float64 // ᾱ used past t = 0 (1 with set_alpha_to_one, else ᾱ_0)
	timesteps []float64
	stride    int // T / steps: the distance to the previous timestep
}

func newAlphaSchedule(c Config, steps int) (alphaSchedule, error) {
	spacing := c.TimestepSpacing
	if spacing == "" {
		spacing = "leading"
	}
	ts, err := spaced(spacing, c.NumTrainTimesteps, steps, c.StepsOffset)
	if err != nil {
		return alphaSchedule{}, err
	}
	if spacing == "linspace" { // diffusers rounds linspace schedules to integers
		for i := range ts {
			ts[i] = math.RoundToEven(ts[i])
		}
	}
	acp := c.alphasCumprod()
	final := acp[0]
	if c.SetAlphaToOne {
		final = 1
	}
	return alphaSchedule{c: c, acp: acp, final: final, timesteps: ts, stride: c.NumTrainTimesteps / steps}, nil
}

func (s *alphaSchedule) Timesteps() []float64    { return s.timesteps }
func (s *alphaSchedule) InitNoiseSigma() float64 { return 1 }
func (s *alphaSchedule) ScaleModelInput(latent *tensor.Tensor, _ int) *tensor.Tensor {
	return latent
}

// GradientStepScale is √(1-ᾱ_t).
func (s *alphaSchedule) GradientStepScale(step int) float64 {
	return sqrt(1 - s.acp[int(s.timesteps[step])])
}

func (s *alphaSchedule) alphaProd(t int) float64 {
	if t < 0 {
		return s.final
	}
	return s.acp[t]
}
