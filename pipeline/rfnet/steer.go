package rfnet

import (
	"errors"
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// TraceEvent is one line of trace.jsonl: a steering iteration (Loss set) or a
// stage timing (Seconds set).
type TraceEvent struct {
	Stage     string   `json:"stage"`            // "object" or "overall"
	Object    *int     `json:"object,omitempty"` // the object's index in the sorted order
	Step      *int     `json:"step,omitempty"`
	Iteration *int     `json:"iteration,omitempty"`
	Loss      *float64 `json:"loss,omitempty"` // the unscaled loss, before the update
	Seconds   *float64 `json:"seconds,omitempty"`
	Name      string   `json:"name,omitempty"`
}

// loop describes one steered denoising run (a single-object run or the overall one).
type loop struct {
	stage  string
	object int // -1 for the overall run
	sched  sched.Scheduler
	cond   *tensor.Tensor // [1, 77, D]
	uncond *tensor.Tensor
	// loss returns the unscaled steering loss at a step from the captured
	// maps; nil means no steering.
	loss             func(step int, maps map[string]capture) (*tensor.Tensor, error)
	keys             []string // the layers the loss reads
	scale, threshold float64
	maxIter          []int
	maxIndexStep     int
	remeasure        bool
	// save, when not empty, keeps the cond half's attention of token saveToken
	// at these layers after every denoising step.
	save      []string
	saveToken int
	// after adjusts the latent after each denoising step (frozen-step replacement).
	after func(step int, z *tensor.Tensor) *tensor.Tensor
}

// savedMaps are one step's saved attention maps by key: [heads·h·w] values and the grid.
type savedMaps map[string]savedMap

type savedMap struct {
	heads, h, w int
	v           []float64 // [heads, h·w]
}

// loopResult holds the latent before the first and after every step, and the saved maps per step.
type loopResult struct {
	latents []*tensor.Tensor
	saved   []savedMaps
}

// steer runs loop l from z, steering the latent on the schedule of §7.3:
// while the last measured (scaled) loss is above scale·threshold and the
// step's iteration budget lasts, measure the loss on z, step z down its
// gradient by the scheduler's GradientStepScale, and keep that (pre-update)
// loss. The last loss carries over steps, so once a measured loss reaches the
// threshold no later step steers (unless remeasure is set).
func (r *runner) steer(l loop, z *tensor.Tensor) (*loopResult, error) {
	res := &loopResult{latents: []*tensor.Tensor{z}}
	last := 10000.0
	ts := l.sched.Timesteps()
	context := tensor.Concat(0, l.uncond, l.cond)
	for i, t := range ts {
		// A step that fails stays open and is left out of the timeline.
		step := r.tl.Begin("denoise step", "stage", l.stage, "object", l.object, "step", i, "timestep", t)
		if l.loss != nil && i < l.maxIndexStep {
			if l.remeasure {
				last = math.Inf(1)
			}
			for n := 0; last/l.scale > l.threshold && n < maxIter(l.maxIter, i); n++ {
				iter := r.tl.Begin("steering iteration", "step", i, "iteration", n)
				loss, grad, err := r.steeringPass(l, z, i, t)
				iter.Set("loss", loss/l.scale, "step_size", l.sched.GradientStepScale(i))
				iter.End()
				if err != nil {
					return nil, err
				}
				if math.IsNaN(loss) || math.IsInf(loss, 0) {
					return nil, r.lossError(i, loss)
				}
				z = z.Sub(grad.Scale(l.sched.GradientStepScale(i)))
				last = loss
				r.emit(TraceEvent{Stage: l.stage, Object: objectIndex(l.object), Step: ptr(i), Iteration: ptr(n), Loss: ptr(loss / l.scale)})
			}
		}
		var saved savedMaps
		var hook unet.Hook
		if len(l.save) > 0 {
			saved = savedMaps{}
			want := map[string]bool{}
			for _, k := range l.save {
				want[k] = true
			}
			hook = func(layer unet.Layer, p *tensor.Tensor) bool {
				if want[layer.Key] {
					// cond half, the word token's column: [heads, h·w]
					col := p.Narrow(0, 1, 1).Narrow(3, l.saveToken, 1)
					saved[layer.Key] = savedMap{heads: p.Dim(1), h: layer.H, w: layer.W, v: col.Float64s()}
				}
				return false
			}
		}
		x := l.sched.ScaleModelInput(tensor.Concat(0, z, z), i)
		// The hook copies what it keeps to the host: only the prediction
		// outlives the call, and its intermediates go back to the device cache.
		var err error
		pass := r.tl.Begin("unet", "batch", 2)
		out := tensor.Scoped(r.Backend, func() *tensor.Tensor {
			var out *tensor.Tensor
			out, err = r.UNet.Forward(x, []float64{t, t}, context, hook)
			return out
		})
		pass.End()
		if err != nil {
			return nil, err
		}
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
		res.saved = append(res.saved, saved)
		if r.progress != nil {
			r.progress(l.stage, l.object, i+1, len(ts))
		}
	}
	return res, nil
}

// steeringPass runs the UNet on z (tracked, batch 1, cond only) up to the last
// layer the loss reads, and returns the scaled loss and its gradient with respect to z.
func (r *runner) steeringPass(l loop, z *tensor.Tensor, step int, t float64) (loss float64, grad *tensor.Tensor, err error) {
	// Only the gradient outlives the pass (the loss is read to the host, the
	// maps and the tape die with it): everything else goes back to the device
	// cache as it returns.
	grad = tensor.Scoped(r.Backend, func() *tensor.Tensor {
		var g *tensor.Tensor
		loss, g, err = r.steeringGradient(l, z, step, t)
		return g
	})
	return loss, grad, err
}

func (r *runner) steeringGradient(l loop, z *tensor.Tensor, step int, t float64) (float64, *tensor.Tensor, error) {
	tape := tensor.NewTape()
	zt := tape.Track(z)
	maps := map[string]capture{}
	want := map[string]bool{}
	for _, k := range l.keys {
		want[k] = true
	}
	_, err := r.UNet.Forward(l.sched.ScaleModelInput(zt, step), []float64{t}, l.cond, func(layer unet.Layer, p *tensor.Tensor) bool {
		if want[layer.Key] {
			maps[layer.Key] = capture{probs: p, h: layer.H, w: layer.W}
		}
		return len(maps) == len(want)
	})
	if err != nil && !errors.Is(err, unet.ErrStopped) {
		return 0, nil, err
	}
	loss, err := l.loss(step, maps)
	if err != nil {
		return 0, nil, err
	}
	loss = loss.Scale(l.scale)
	grads, err := tape.Backward(loss, zt)
	if err != nil {
		return 0, nil, err
	}
	return loss.Item(), grads[0], nil
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
