package sched

import "github.com/rfnet/rfnet-native/tensor"

// pndm is PNDMScheduler with skip_prk_steps: linear multistep (PLMS) steps
// only, diffusers' scheduling_pndm.py. The second step re-evaluates the first
// step's timestep, so there are steps+1 model calls.
//
// Its state (Linear) is five slots: the latent, the last three model
// outputs kept (newest first: diffusers' ets without the current one) and
// the sample saved by the first step for the second.
type pndm struct {
	alphaSchedule
	h history
}

const (
	pndmLatent = iota
	pndmE1     // the newest kept model output
	pndmE2
	pndmE3
	pndmCur // the first step's sample
	pndmSlots
)

func newPNDM(c Config, steps int) (Scheduler, error) {
	a, err := newAlphaSchedule(c, steps)
	if err != nil {
		return nil, err
	}
	// PLMS evaluates the second-largest timestep twice (diffusers:
	// concatenate([ts[:-1], ts[-2:-1], ts[-1:]]) in ascending order, reversed).
	if ts := a.timesteps; steps > 1 {
		a.timesteps = append([]float64{ts[0], ts[1]}, ts[1:]...)
	}
	return &pndm{alphaSchedule: a}, nil
}

func (s *pndm) Slots() int   { return pndmSlots }
func (s *pndm) linear() bool { return true }

func (s *pndm) Step(out, latent *tensor.Tensor, step int) *tensor.Tensor {
	return s.h.step(s, out, latent, step)
}

// plmsWeights are the Adams-Bashforth weights on the model output and the
// kept ones, newest first, by how many outputs there are with the new one.
var plmsWeights = [...][]float64{
	1: {1},
	2: {3.0 / 2, -1.0 / 2},
	3: {23.0 / 12, -16.0 / 12, 5.0 / 12},
	4: {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24},
}

// Coefficients are step_plms: an Adams-Bashforth combination ε̃ of the model
// output e and the kept ones (the step's index is diffusers' counter), then
// _get_prev_sample of the latent (the saved sample at the second step).
func (s *pndm) Coefficients(step int) Coefficients {
	t := int(s.timesteps[step])
	prev := t - s.stride
	const e = pndmSlots                 // the model output's column of [state; e]
	eps := make([]float64, pndmSlots+1) // ε̃'s weight on each column
	sample := pndmLatent
	m := identity(pndmSlots)
	m[pndmCur][pndmCur] = 0
	if step == 1 { // the first timestep again: the mean of both outputs, from the saved sample
		prev, t = t, t+s.stride
		sample = pndmCur
		eps[e], eps[pndmE1] = 0.5, 0.5
	} else {
		// ets.append(e): the kept outputs shift by one.
		m[pndmE1], m[pndmE2], m[pndmE3] = unit(pndmSlots+1, e), unit(pndmSlots+1, pndmE1), unit(pndmSlots+1, pndmE2)
		if step == 0 {
			m[pndmCur][pndmLatent] = 1
		}
		w := plmsWeights[max(1, min(step, 4))]
		eps[e] = w[0]
		copy(eps[pndmE1:], w[1:])
	}
	// _get_prev_sample (formula (9) of the PNDM paper): x' = c·x - k·ε̃, ε̃
	// first turned into ε from a v-prediction (√ᾱ·ε̃ + √(1-ᾱ)·x).
	a, aPrev := s.acp[t], s.alphaProd(prev)
	b, bPrev := 1-a, 1-aPrev
	c := sqrt(aPrev / a)
	k := (aPrev - a) / (a*sqrt(bPrev) + sqrt(a*b*aPrev))
	onEps, onSample := 1.0, 0.0
	if s.c.PredictionType == VPrediction {
		onEps, onSample = sqrt(a), sqrt(b)
	}
	x := make([]float64, pndmSlots+1)
	for j, w := range eps {
		x[j] = -k * onEps * w
	}
	x[sample] += c - k*onSample
	m[pndmLatent] = x
	return Coefficients{Input: 1, Step: m}
}
