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
	lowerOrderFinal      bool
	h                    history // slot 1: the last x̂₀
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

func (s *dpmSolver) Slots() int   { return 2 }
func (s *dpmSolver) linear() bool { return true }

func (s *dpmSolver) Step(out, latent *tensor.Tensor, step int) *tensor.Tensor {
	return s.h.step(s, out, latent, step)
}

// Coefficients: the data prediction x̂₀ = a·x + e·out (convert_model_output),
// kept in slot 1 for the next step, and the update: first order (DDIM-like,
// the first step and the final ones of short schedules)
// x' = (σ_prev/σ_t)·x - c·x̂₀, else the midpoint second order
// x' = (σ_prev/σ_t)·x - c·m0 - ½c·(m0 - m1)/r0 with m0 this x̂₀, m1 the last,
// c = α_prev·(e^-h - 1).
func (s *dpmSolver) Coefficients(step int) Coefficients {
	n := len(s.timesteps)
	t := int(s.timesteps[step])
	prev := 0
	if step < n-1 {
		prev = int(s.timesteps[step+1])
	}
	lowerFinal := step == n-1 && s.lowerOrderFinal && n < 15
	a, e := 1/s.alpha[t], -s.sigma[t]/s.alpha[t]
	if s.c.PredictionType == VPrediction {
		a, e = s.alpha[t], -s.sigma[t]
	}
	h := s.lambda[prev] - s.lambda[t]
	c := s.alpha[prev] * (math.Exp(-h) - 1)
	onX0, onLast := c, 0.0 // x' = (σ_prev/σ_t)·x - onX0·x̂₀ + onLast·m1
	if step > 0 && !lowerFinal {
		r0 := (s.lambda[t] - s.lambda[int(s.timesteps[step-1])]) / h
		onX0, onLast = c*(1+0.5/r0), 0.5*c/r0
	}
	return Coefficients{Input: 1, Step: [][]float64{
		{s.sigma[prev]/s.sigma[t] - onX0*a, onLast, -onX0 * e},
		{a, 0, e},
	}}
}
