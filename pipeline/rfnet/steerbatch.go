package rfnet

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// steerBatch runs the single-object loops ls from zs as one batch (config key
// batch_objects): every denoising pass is one CFG batch of 2n (the n uncond
// halves, then the n cond halves), and each step's steering iterations run
// batched over the objects still iterating. Each object keeps its own
// scheduler, last loss, gate, budget and step size, so its result, trace rows
// and saved maps are those steer gives it alone: the samples of a batch do not
// interact in the UNet (its norms are per sample), so the gradient of the sum
// of the objects' losses is each object's own gradient.
//
// All loops share the stage, the keys they read and save and the schedule's
// length (they come from one config); the loss, cond, saved token and
// scheduler are each object's own. Trace rows come interleaved by object.
func (r *runner) steerBatch(ls []loop, zs []*tensor.Tensor) ([]*loopResult, error) {
	n := len(ls)
	res := make([]*loopResult, n)
	last := make([]float64, n)
	zs = append([]*tensor.Tensor(nil), zs...)
	ctxs := make([]*tensor.Tensor, 2*n)
	for j, l := range ls {
		res[j] = &loopResult{latents: []*tensor.Tensor{zs[j]}}
		last[j] = 10000.0 // as steer starts
		ctxs[j], ctxs[n+j] = l.uncond, l.cond
	}
	// The denoising passes' text is the same at every step: its keys and
	// values are projected once. The guidance passes batch the objects still
	// iterating: each set's are projected the first time it iterates.
	context := r.UNet.PrepareContext(tensor.Concat(0, ctxs...))
	defer context.Free()
	denoise := r.newDenoisePass(ls, context)
	defer denoise.close()
	guidance := &batchGuidance{r: r, ls: ls, texts: map[string]*unet.Context{}}
	defer guidance.free()
	ts := ls[0].sched.Timesteps()
	times := make([]float64, 2*n)
	for j, l := range ls {
		res[j].saved = make([][]savedMaps, len(l.saveTokens))
	}
	for i, t := range ts {
		if err := pipeline.Canceled(r.ctx, i); err != nil {
			return nil, err
		}
		step := r.tl.Begin("denoise step", "stage", ls[0].stage, "objects", n, "step", i, "timestep", t)
		pending, err := r.steerBatchStep(ls, zs, i, t, last, guidance)
		if err != nil {
			return nil, err
		}
		measure := make([]bool, n)
		for j, p := range pending {
			measure[j] = p != nil
		}
		xs := make([]*tensor.Tensor, 2*n)
		for j, l := range ls {
			xs[j] = l.sched.ScaleModelInput(zs[j], i)
			xs[n+j] = xs[j]
			times[j], times[n+j] = t, t
		}
		x := tensor.Concat(0, xs...)
		pass := r.tl.Begin("unet", "batch", 2*n)
		dn, err := denoise.run(x, times, i, measure)
		pass.End()
		x.Free()
		for j := range ls {
			if xs[j] != zs[j] {
				xs[j].Free()
			}
		}
		for j := range ls {
			if p := pending[j]; p != nil {
				if err == nil && !math.IsNaN(dn.after[j]) && !math.IsInf(dn.after[j], 0) {
					p.LossAfter, p.LossAfterFrom = ptr(dn.after[j]), afterDenoisingPass
				}
				r.emit(*p)
			}
		}
		if err != nil {
			return nil, err
		}
		out := dn.pred
		if i == 0 {
			if err := r.CheckFinite(out, "the UNet's prediction at step 1", "unet"); err != nil {
				return nil, err
			}
		}
		parts := out.Chunk(2, 0)
		eps := parts[0].Add(parts[1].Sub(parts[0]).Scale(r.cfg.Guidance))
		for j, l := range ls {
			zs[j] = l.sched.Step(eps.Narrow(0, j, 1), zs[j], i)
		}
		if err := r.Backend.Sync(); err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		step.End()
		for j, l := range ls {
			iterations := 0
			if pending[j] != nil {
				iterations = *pending[j].Iteration + 1
			}
			res[j].latents = append(res[j].latents, zs[j])
			for k, m := range dn.saved[j] {
				res[j].saved[k] = append(res[j].saved[k], m)
			}
			res[j].iterations = append(res[j].iterations, iterations)
			// The objects' steps report one by one: a cancel in one's
			// progress stops the reports of the others too.
			if err := pipeline.Canceled(r.ctx, i+1); err != nil && j > 0 {
				return nil, err
			}
			if r.progress != nil {
				r.progress(l.stage, l.object, i+1, len(ts))
			}
			if r.latent != nil {
				r.latent(l.stage, l.object, i+1, zs[j])
			}
		}
	}
	return res, nil
}

// steerBatchStep is steerStep for every object of a batch at step i: each
// object's gate and budget as steerStep decides them, the iterations batched
// over the objects still iterating. It updates zs and last in place and
// returns each object's pending row (nil where the step did not steer it).
func (r *runner) steerBatchStep(ls []loop, zs []*tensor.Tensor, i int, t float64, last []float64, guidance *batchGuidance) ([]*TraceEvent, error) {
	n := len(ls)
	pending := make([]*TraceEvent, n)
	budget := make([]int, n)
	open := make([]bool, n)
	for j, l := range ls {
		e := TraceEvent{Stage: l.stage, Object: objectIndex(l.object), Step: ptr(i), Timestep: ptr(t)}
		budget[j] = maxIter(l.maxIter, i)
		switch {
		case l.loss == nil:
			e.Why = whyNoLoss
		case i >= l.maxIndexStep:
			e.Why = whyPastSteeredSteps
		case budget[j] == 0:
			e.Why = whyBudgetSpent
		default:
			if l.remeasure {
				last[j] = math.Inf(1)
			}
			if !(last[j]/l.scale > l.threshold) {
				e.Why = whyGate
				e.LastLoss, e.Threshold = ptr(last[j]/l.scale), ptr(l.threshold)
			}
		}
		if e.Why != "" {
			r.emit(e)
			continue
		}
		open[j] = true
	}
	// emitPending sends the rows of act's earlier iterations without their
	// loss after, when an iteration fails.
	emitPending := func(act []int) {
		for _, j := range act {
			if pending[j] != nil {
				r.emit(*pending[j])
			}
		}
	}
	for it := 0; ; it++ {
		var act []int
		for j, l := range ls {
			if open[j] && last[j]/l.scale > l.threshold && it < budget[j] {
				act = append(act, j)
			}
		}
		if len(act) == 0 {
			return pending, nil
		}
		if err := pipeline.Canceled(r.ctx, i); err != nil {
			return nil, err
		}
		iter := r.tl.Begin("steering iteration", "step", i, "iteration", it, "objects", act)
		in := make([]*tensor.Tensor, len(act))
		for k, j := range act {
			in[k] = zs[j]
		}
		ms, grads, err := guidance.of(act).run(in, i, t)
		if err != nil {
			emitPending(act)
			return nil, err
		}
		// The batch's loss is the sum it differentiates, each object's apart.
		sum, losses := 0.0, make([]float64, len(act))
		for k, j := range act {
			losses[k] = ms[k].loss / ls[j].scale
			sum += losses[k]
		}
		iter.Set("loss", sum, "losses", losses, "step_size", ls[act[0]].sched.GradientStepScale(i))
		iter.End()
		for k, j := range act {
			l, m := ls[j], ms[k]
			finite := !math.IsNaN(m.loss) && !math.IsInf(m.loss, 0)
			if pending[j] != nil {
				if finite {
					pending[j].LossAfter, pending[j].LossAfterFrom = ptr(m.loss/l.scale), afterNextIteration
				}
				r.emit(*pending[j])
				pending[j] = nil
			}
			if !finite {
				emitPending(act[k+1:])
				return nil, r.lossError(i, m.loss)
			}
			size := l.sched.GradientStepScale(i)
			zs[j] = zs[j].Sub(grads[k].Scale(size))
			last[j] = m.loss
			e := TraceEvent{Stage: l.stage, Object: objectIndex(l.object), Step: ptr(i), Timestep: ptr(t)}
			e.Iteration, e.StepSize, e.Loss, e.GradNorm = ptr(it), ptr(size), ptr(m.loss/l.scale), ptr(m.gradNorm)
			pending[j] = &e
		}
	}
}

// batchGuidance makes a batch's guidance passes (steerBatchStep): for each
// set of objects still iterating, their prepared text (unet.PrepareContext
// of their conds in the set's order, projected the first time the set
// iterates, outside the pass's scope, and kept until the batch ends: a few
// MiB each at SD's sizes) and the pass over the set's batch, a
// guidancePass. Only the latest set's pass is kept (captured as a CUDA graph
// from its second pass on, where the backend can): a captured pass holds a
// pass's buffers, and the set changes seldom (under forced steering never;
// under the gates objects leave it one at a time).
type batchGuidance struct {
	r     *runner
	ls    []loop
	texts map[string]*unet.Context
	key   string // the set of pass
	pass  *guidancePass
}

// of is the guidance pass of the objects act.
func (g *batchGuidance) of(act []int) *guidancePass {
	key := fmt.Sprint(act)
	if g.pass != nil && key == g.key {
		return g.pass
	}
	text, ok := g.texts[key]
	if !ok {
		conds := make([]*tensor.Tensor, len(act))
		for a, j := range act {
			conds[a] = g.ls[j].cond
		}
		text = g.r.UNet.PrepareContext(tensor.Concat(0, conds...))
		g.texts[key] = text
	}
	g.pass.close()
	ls, act := g.ls, append([]int(nil), act...)
	p := &guidancePass{r: g.r, text: text, keys: ls[act[0]].keys, // the loops read the same keys
		losses: func(step int, maps []map[string]capture) ([]steeringLoss, error) {
			out := make([]steeringLoss, len(act))
			for a, j := range act {
				var err error
				if out[a], err = ls[j].loss(step, maps[a]); err != nil {
					return nil, err
				}
			}
			return out, nil
		}}
	for _, j := range act {
		p.scheds, p.scales = append(p.scheds, ls[j].sched), append(p.scales, ls[j].scale)
	}
	g.key, g.pass = key, p
	return p
}

func (g *batchGuidance) free() {
	g.pass.close()
	for _, c := range g.texts {
		c.Free()
	}
}
