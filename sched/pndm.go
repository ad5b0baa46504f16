package sched

import "github.com/rfnet/rfnet-native/tensor"

// pndm is PNDMScheduler with skip_prk_steps: linear multistep (PLMS) steps
// only, diffusers' scheduling_pndm.py. The second step re-evaluates the first
// step's timestep, so there are steps+1 model calls.
type pndm struct {
	alphaSchedule
	ets       []*tensor.Tensor
	counter   int
	curSample *tensor.Tensor
}

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

// Step is step_plms: Adams-Bashforth combinations of the last model outputs.
func (s *pndm) Step(out, latent *tensor.Tensor, step int) *tensor.Tensor {
	t := int(s.timesteps[step])
	prev := t - s.stride
	if s.counter != 1 {
		if len(s.ets) > 3 {
			s.ets = s.ets[len(s.ets)-3:]
		}
		s.ets = append(s.ets, out)
	} else {
		prev = t
		t += s.stride
	}
	e := s.ets
	n := len(e)
	switch {
	case n == 1 && s.counter == 0:
		s.curSample = latent
	case n == 1 && s.counter == 1:
		out = out.Add(e[0]).Scale(0.5)
		latent = s.curSample
		s.curSample = nil
	case n == 2:
		out = e[1].Scale(3).Sub(e[0]).Scale(0.5)
	case n == 3:
		out = e[2].Scale(23).Sub(e[1].Scale(16)).Add(e[0].Scale(5)).Scale(1.0 / 12)
	default:
		out = e[n-1].Scale(55).Sub(e[n-2].Scale(59)).Add(e[n-3].Scale(37)).Sub(e[n-4].Scale(9)).Scale(1.0 / 24)
	}
	s.counter++
	return s.prevSample(latent, t, prev, out)
}

// prevSample is PNDM's _get_prev_sample (formula (9) of the PNDM paper).
func (s *pndm) prevSample(latent *tensor.Tensor, t, prev int, out *tensor.Tensor) *tensor.Tensor {
	a, aPrev := s.acp[t], s.alphaProd(prev)
	b, bPrev := 1-a, 1-aPrev
	if s.c.PredictionType == VPrediction {
		out = out.Scale(sqrt(a)).Add(latent.Scale(sqrt(b)))
	}
	sampleCoeff := sqrt(aPrev / a)
	denom := a*sqrt(bPrev) + sqrt(a*b*aPrev)
	return latent.Scale(sampleCoeff).Sub(out.Scale((aPrev - a) / denom))
}
