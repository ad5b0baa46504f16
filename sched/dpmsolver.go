package sched

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// dpmSolver is DPMSolverMultistepScheduler as Stable Diffusion uses it:
// DPM-Solver++ (data prediction), second order, midpoint solver, first-order
// final steps for short schedules; diffusers' scheduling_dpmsolver_multistep.py.
type dpmSolver struct {
	c                    Config
	alpha, sigma, lambda []float64
	timesteps            []float64
	outputs              []*tensor.Tensor // the last two x̂₀ predictions, oldest first
	lowerOrderNums       int
	lowerOrderFinal      bool
}

func newDPMSolver(c Config, steps int) (Scheduler, error) {
	if c.AlgorithmType != "dpmsolver++" || c.SolverType != "midpoint" || c.SolverOrder != 2 {
		return nil, errUnsupportedDPM(c)
	}
	spacing := c.TimestepSpacing
	if spacing == "" {
		spacing = "linspace"
	}
	T := c.NumTrainTimesteps
	var ts []float64
	switch spacing {
	case "linspace": // linspace(0, T-1, steps+1), rounded, largest first, without the 0
		for i := steps; i >= 1; i-- {
			ts = append(ts, math.RoundToEven(float64(i)*float64(T-1)/float64(steps)))
		}
	case "leading":
		ratio := T / (steps + 1)
		for i := steps; i >= 1; i-- {
			ts = append(ts, float64(i*ratio+c.StepsOffset))
		}
	default:
		var err error
		if ts, err = spaced(spacing, T, steps, c.StepsOffset); err != nil {
			return nil, err
		}
	}
	// Repeated timesteps are dropped (np.unique keeping the first).
	uniq := ts[:0:0]
	seen := map[float64]bool{}
	for _, t := range ts {
		if !seen[t] {
			seen[t] = true
			uniq = append(uniq, t)
		}
	}
	acp := c.alphasCumprod()
	s := &dpmSolver{c: c, timesteps: uniq, lowerOrderFinal: c.LowerOrderFinal == nil || *c.LowerOrderFinal}
	for _, a := range acp {
		al, sg := float32(math.Sqrt(a)), float32(math.Sqrt(float64(float32(1-a))))
		s.alpha = append(s.alpha, float64(al))
		s.sigma = append(s.sigma, float64(sg))
		s.lambda = append(s.lambda, float64(float32(math.Log(float64(al))-math.Log(float64(sg)))))
	}
	return s, nil
}

func (s *dpmSolver) Timesteps() []float64    { return s.timesteps }
func (s *dpmSolver) InitNoiseSigma() float64 { return 1 }
func (s *dpmSolver) ScaleModelInput(latent *tensor.Tensor, _ int) *tensor.Tensor {
	return latent
}

// GradientStepScale is σ_t = √(1-ᾱ_t).
func (s *dpmSolver) GradientStepScale(step int) float64 {
	return s.sigma[int(s.timesteps[step])]
}

func (s *dpmSolver) Step(out, latent *tensor.Tensor, step int) *tensor.Tensor {
	n := len(s.timesteps)
	t := int(s.timesteps[step])
	prev := 0
	if step < n-1 {
		prev = int(s.timesteps[step+1])
	}
	lowerFinal := step == n-1 && s.lowerOrderFinal && n < 15
	// convert_model_output: the data prediction x̂₀.
	var x0 *tensor.Tensor
	if s.c.PredictionType == VPrediction {
		x0 = latent.Scale(s.alpha[t]).Sub(out.Scale(s.sigma[t]))
	} else {
		x0 = latent.Sub(out.Scale(s.sigma[t])).Scale(1 / s.alpha[t])
	}
	s.outputs = append(s.outputs, x0)
	if len(s.outputs) > 2 {
		s.outputs = s.outputs[1:]
	}
	h := s.lambda[prev] - s.lambda[t]
	var next *tensor.Tensor
	if s.lowerOrderNums < 1 || lowerFinal {
		// First order (DDIM-like): x = (σ_prev/σ_t)·x - α_prev·(e^-h - 1)·x̂₀
		next = latent.Scale(s.sigma[prev] / s.sigma[t]).Sub(x0.Scale(s.alpha[prev] * (math.Exp(-h) - 1)))
	} else {
		s1 := int(s.timesteps[step-1])
		m0, m1 := s.outputs[1], s.outputs[0]
		r0 := (s.lambda[t] - s.lambda[s1]) / h
		d1 := m0.Sub(m1).Scale(1 / r0)
		c := s.alpha[prev] * (math.Exp(-h) - 1)
		next = latent.Scale(s.sigma[prev] / s.sigma[t]).Sub(m0.Scale(c)).Sub(d1.Scale(0.5 * c))
	}
	if s.lowerOrderNums < 2 {
		s.lowerOrderNums++
	}
	return next
}
