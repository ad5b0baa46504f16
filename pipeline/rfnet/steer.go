package rfnet

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// loop describes one steered denoising run (a single-object run or the overall one).
type loop struct {
	stage  string
	object int // -1 for the overall run
	sched  sched.Scheduler
	cond   *tensor.Tensor // [1, 77, D]
	uncond *tensor.Tensor
	// prepared is cond's cross-attention keys and values, projected once by
	// steer for every guidance pass of the run; nil for a loop whose passes
	// run outside steer (they project cond each time).
	prepared *unet.Context
	// guidance is the loop's guidance pass as steer runs it (captured as a
	// CUDA graph where the backend can); nil outside steer.
	guidance *guidancePass
	// loss returns the unscaled steering loss at a step from the captured
	// maps; nil means no steering.
	loss             func(step int, maps map[string]capture) (steeringLoss, error)
	keys             []string // the layers the loss reads
	scale, threshold float64
	maxIter          []int
	maxIndexStep     int
	remeasure        bool
	// save and saveTokens: after every denoising step the loop keeps the
	// cond half's attention of each of saveTokens at each of the layers
	// save (loopResult.saved).
	save       []string
	saveTokens []int
	// before, when set, runs at the start of each step, outside its passes'
	// scopes: the uploads of the step's loss constants (the overall run's
	// reference maps). steer calls it; the batched single-object loops have none.
	before func(step int)
	// after adjusts the latent after each denoising step (frozen-step replacement).
	after func(step int, z *tensor.Tensor) *tensor.Tensor
}

// savedMaps are one step's saved attention maps by key: [heads·h·w] values and the grid.
type savedMaps map[string]savedMap

type savedMap struct {
	heads, h, w int
	v           []float64 // [heads, h·w]
}

// loopResult holds the latent before the first and after every step, the
// saved maps of each saved token per step and the steering iterations each
// step made.
type loopResult struct {
	latents    []*tensor.Tensor
	saved      [][]savedMaps // [token (the loop's saveTokens)][step]
	iterations []int
}

// steer runs loop l from z, steering the latent on the schedule of §7.3
// (see steerStep), then taking each denoising step. It traces every
// iteration and, for every step without one, why.
func (r *runner) steer(l loop, z *tensor.Tensor) (*loopResult, error) {
	res := &loopResult{latents: []*tensor.Tensor{z}}
	last := 10000.0
	ts := l.sched.Timesteps()
	// The text is the same at every step and pass: the keys and values of
	// [uncond, cond] (denoising) and of cond (guidance) are projected once.
	context := r.UNet.PrepareContext(tensor.Concat(0, l.uncond, l.cond))
	defer context.Free()
	denoise := r.newDenoisePass([]loop{l}, context)
	defer denoise.close()
	l.prepared = r.UNet.PrepareContext(l.cond)
	defer l.prepared.Free()
	if l.loss != nil {
		l.guidance = r.loopGuidance(l)
		defer l.guidance.close()
	}
	res.saved = make([][]savedMaps, len(l.saveTokens))
	for i, t := range ts {
		if err := pipeline.Canceled(r.ctx, i); err != nil {
			return nil, err
		}
		// A step that fails stays open and is left out of the timeline.
		step := r.tl.Begin("denoise step", "stage", l.stage, "object", l.object, "step", i, "timestep", t)
		if l.before != nil {
			l.before(i)
		}
		var pending *TraceEvent
		var err error
		z, pending, err = r.steerStep(l, z, i, t, &last)
		if err != nil {
			return nil, err
		}
		iterations := 0 // the step's steering iterations: its last row's index + 1
		if pending != nil {
			iterations = *pending.Iteration + 1
		}
		// The denoising pass sees the latent the step's last update left, so
		// its cond half measures that update's loss after.
		measure := pending != nil
		scaled := l.sched.ScaleModelInput(z, i)
		x := tensor.Concat(0, scaled, scaled)
		pass := r.tl.Begin("unet", "batch", 2)
		dn, err := denoise.run(x, []float64{t, t}, i, []bool{measure})
		pass.End()
		x.Free()
		if scaled != z {
			scaled.Free()
		}
		if err != nil {
			if measure { // the step's last row, without the loss after this pass did not measure
				r.emit(*pending)
			}
			return nil, err
		}
		if measure {
			if after := dn.after[0]; !math.IsNaN(after) && !math.IsInf(after, 0) { // JSON has neither
				pending.LossAfter, pending.LossAfterFrom = ptr(after), afterDenoisingPass
			}
			r.emit(*pending)
		}
		out := dn.pred
		if i == 0 {
			if err := r.CheckFinite(out, "the UNet's prediction at step 1", "unet"); err != nil {
				return nil, err
			}
		}
		parts := out.Chunk(2, 0)
		eps := parts[0].Add(parts[1].Sub(parts[0]).Scale(r.cfg.Guidance))
		z = l.sched.Step(eps, z, i)
		if l.after != nil {
			z = l.after(i, z)
		}
		if err := r.Backend.Sync(); err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		step.End()
		res.latents = append(res.latents, z)
		for k, m := range dn.saved[0] {
			res.saved[k] = append(res.saved[k], m)
		}
		res.iterations = append(res.iterations, iterations)
		if r.progress != nil {
			r.progress(l.stage, l.object, i+1, len(ts))
		}
		if r.latent != nil {
			r.latent(l.stage, l.object, i+1, z)
		}
	}
	return res, nil
}

// steerStep runs step i's steering iterations on z (§7.3): while the last
// measured (scaled) loss is above scale·threshold and the step's iteration
// budget lasts, measure the loss on z, step z down its gradient by the
// scheduler's GradientStepScale, and keep that (pre-update) loss in last.
// The last loss carries over steps, so once a measured loss reaches the
// threshold no later step steers (unless remeasure is set).
//
// It returns the updated latent and the trace row of the step's last
// iteration, for the caller to add the loss after and emit; the rows of the
// earlier iterations it emits itself. A step without iterations returns no
// row and emits the one that says why.
func (r *runner) steerStep(l loop, z *tensor.Tensor, i int, t float64, last *float64) (*tensor.Tensor, *TraceEvent, error) {
	row := func() TraceEvent {
		return TraceEvent{Stage: l.stage, Object: objectIndex(l.object), Step: ptr(i), Timestep: ptr(t)}
	}
	skip := func(why string) (*tensor.Tensor, *TraceEvent, error) {
		e := row()
		e.Why = why
		if why == whyGate {
			e.LastLoss, e.Threshold = ptr(*last/l.scale), ptr(l.threshold)
		}
		r.emit(e)
		return z, nil, nil
	}
	budget := maxIter(l.maxIter, i)
	switch {
	case l.loss == nil:
		return skip(whyNoLoss)
	case i >= l.maxIndexStep:
		return skip(whyPastSteeredSteps)
	case budget == 0:
		return skip(whyBudgetSpent)
	}
	if l.remeasure {
		*last = math.Inf(1)
	}
	if !(*last/l.scale > l.threshold) {
		return skip(whyGate)
	}
	var pending *TraceEvent
	for n := 0; *last/l.scale > l.threshold && n < budget; n++ {
		if err := pipeline.Canceled(r.ctx, i); err != nil {
			return nil, nil, err
		}
		iter := r.tl.Begin("steering iteration", "step", i, "iteration", n)
		m, grad, err := r.steeringPass(l, z, i, t)
		if err != nil {
			// The previous iteration's row goes out without its loss after;
			// this iteration's span stays open and out of the timeline.
			if pending != nil {
				r.emit(*pending)
			}
			return nil, nil, err
		}
		iter.Set("loss", m.loss/l.scale, "step_size", l.sched.GradientStepScale(i))
		iter.End()
		finite := !math.IsNaN(m.loss) && !math.IsInf(m.loss, 0)
		if pending != nil { // this pass measured the previous update
			if finite {
				pending.LossAfter, pending.LossAfterFrom = ptr(m.loss/l.scale), afterNextIteration
			}
			r.emit(*pending)
		}
		if !finite {
			return nil, nil, r.lossError(i, m.loss)
		}
		size := l.sched.GradientStepScale(i)
		z = z.Sub(grad.Scale(size))
		*last = m.loss
		e := row()
		e.Iteration, e.StepSize, e.Loss, e.GradNorm = ptr(n), ptr(size), ptr(m.loss/l.scale), ptr(m.gradNorm)
		e.Suppression, e.Reference = m.suppression, m.reference
		pending = &e
	}
	return z, pending, nil
}

// measurement is what a steering pass measured besides the gradient.
type measurement struct {
	loss     float64 // scaled by loss_scale
	gradNorm float64 // of the scaled loss's gradient
	// suppression and reference are the overall loss's terms, unscaled (nil
	// when the term is off or the loss has no terms).
	suppression, reference *float64
}

// steeringPass runs the UNet on z (batch 1, cond only) up to the last layer
// the loss reads, and returns the scaled loss and its gradient with respect
// to z: l's guidance pass (guidancePass), or for a loop steer did not set
// up (the tests' passes) a one-off, eager one under cond prepared for it.
func (r *runner) steeringPass(l loop, z *tensor.Tensor, step int, t float64) (measurement, *tensor.Tensor, error) {
	g := l.guidance
	if g == nil {
		if l.prepared == nil {
			l.prepared = r.UNet.PrepareContext(l.cond)
			defer l.prepared.Free()
		}
		g = r.loopGuidance(l)
	}
	ms, grads, err := g.run([]*tensor.Tensor{z}, step, t)
	if err != nil {
		return measurement{}, nil, err
	}
	return ms[0], grads[0], nil
}

// keySet is the set of keys.
func keySet(keys []string) map[string]bool {
	set := map[string]bool{}
	for _, k := range keys {
		set[k] = true
	}
	return set
}

func ptr[T any](v T) *T { return &v }

func objectIndex(j int) *int {
	if j < 0 {
		return nil
	}
	return ptr(j)
}

// lossError is the error of a non-finite steering loss at step i. In half
// precision the steering pass may also have overflowed, which a wider compute
// dtype fixes (pipeline.OverflowError says which).
func (r *runner) lossError(i int, loss float64) error {
	err := fmt.Errorf("step %d: the steering loss is %v, %w: check the config's loss weights and scales", i+1, loss, pipeline.ErrNonFinite)
	if r.DType == tensor.Float16 || r.DType == tensor.BFloat16 {
		err = fmt.Errorf("%w; if they are sound, %w", err, &pipeline.OverflowError{DType: r.DType})
	}
	return err
}
