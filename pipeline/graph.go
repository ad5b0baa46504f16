package pipeline

import (
	"errors"
	"fmt"

	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// The denoising loop's steps (Model.stepper picks): whole steps captured
// where the scheduler is linear (linearSteps), else the UNet call alone
// (unetSteps, under schedSteps).

// unetSteps makes the denoising loop's UNet calls. On a backend that
// captures (tensor.Capturer: CUDA graphs) the first step runs the call
// eagerly and captures it, and every later step replays it, its inputs (the
// scaled latents, the timesteps' projection) copied into the graph's fixed
// buffers; the text's prepared keys and values stay where they are for the
// whole generation, and the graph reads them there. The loop's shapes are the
// same at every step, which a replay needs. Elsewhere, or when the backend
// cannot capture (it says why), the calls run eagerly.
type unetSteps struct {
	m       *Model
	context *unet.Context
	call    *tensor.Call
	eager   bool
}

// unetSteps makes the calls under a prepared context, which must outlive them
// (close the steps before freeing it).
func (m *Model) unetSteps(context *unet.Context) *unetSteps {
	// text_time conditioning takes host values (time ids) the graph cannot hold.
	return &unetSteps{m: m, context: context, eager: m.UNet.Config.AdditionEmbedType == unet.TextTime}
}

// predict is the UNet's prediction for x at times.
func (u *unetSteps) predict(x *tensor.Tensor, times []float64) (*tensor.Tensor, error) {
	if u.eager {
		return u.m.UNet.ForwardContext(x, times, u.context, nil, nil)
	}
	proj := u.m.UNet.TimeProjection(x.Backend(), x.DType(), times)
	if u.call == nil {
		call, first, err := tensor.CaptureCall(x.Backend(), func(in []*tensor.Tensor) *tensor.Tensor {
			out, err := u.m.UNet.ForwardProjected(in[0], in[1], u.context)
			if err != nil { // the shapes come from Forward's own, and text_time went eager
				panic(fmt.Sprintf("pipeline: unet call to capture: %v", err))
			}
			return out
		}, x, proj)
		if errors.Is(err, tensor.ErrUnsupported) {
			u.eager = true
			return u.m.UNet.ForwardContext(x, times, u.context, nil, nil)
		}
		if err != nil {
			return nil, err
		}
		u.call = call
		return first, nil
	}
	return u.call.Run(x, proj)
}

func (u *unetSteps) close() { u.call.Close() }

// linearSteps makes whole denoising steps of a Linear scheduler (sched.Linear):
// the model input formed from the state, the CFG UNet call, and the
// scheduler's update with the guidance combine folded in, as two
// tensor.Combine passes around the UNet. The state [slots, latent size]
// (slot 0 the latent) and each step's coefficients are inputs, the
// coefficients uploaded before the step into device buffers, so on a
// backend that captures the whole step is one CUDA graph replayed at every
// step; elsewhere, or when capture fails, the same function runs eagerly
// (the same ops: graph and eager agree bit for bit).
type linearSteps struct {
	m       *Model
	context *unet.Context
	l       sched.Linear
	weights []float64    // the model outputs' weights: [1], or [1-g, g] for CFG
	shape   tensor.Shape // the latents'
	batched tensor.Shape // the UNet's input and output: [batch, latent...]
	state   *tensor.Tensor
	call    *tensor.Call
	eager   bool
}

// linearSteps starts from latents under a prepared context (which must
// outlive the steps).
func (m *Model) linearSteps(context *unet.Context, l sched.Linear, latents *tensor.Tensor, guidance float64) *linearSteps {
	weights := []float64{1}
	if GuidanceBatch(guidance) == 2 {
		weights = []float64{1 - guidance, guidance}
	}
	n := latents.Numel()
	state := latents.Reshape(1, n)
	if slots := l.Slots(); slots > 1 {
		state = tensor.Concat(0, state, tensor.Zeros(latents.Backend(), latents.DType(), slots-1, n))
	}
	shape := latents.Shape()
	batched := append(tensor.Shape{len(weights)}, shape[1:]...)
	return &linearSteps{m: m, context: context, l: l, weights: weights, shape: shape, batched: batched, state: state}
}

// step runs step i at timestep t and returns the latents after it and the
// UNet's prediction [batch, latent...] at it.
func (u *linearSteps) step(i int, t float64) (latents, pred *tensor.Tensor, err error) {
	b, d := u.state.Backend(), u.state.DType()
	batch, slots := len(u.weights), u.l.Slots()
	c := u.l.Coefficients(i)
	cd := tensor.CoefDType(d)
	cin := tensor.FromFloat64(b, cd, tensor.Shape{batch, slots}, c.InputMatrix(batch))
	cstep := tensor.FromFloat64(b, cd, tensor.Shape{slots, slots + batch}, c.StepMatrix(u.weights...))
	times := make([]float64, batch)
	for j := range times {
		times[j] = t
	}
	proj := u.m.UNet.TimeProjection(b, d, times)
	// One output: the next state and the prediction packed [slots+batch, n].
	f := func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		state, proj, cin, cstep := in[0], in[1], in[2], in[3]
		x := tensor.Combine(cin, state).Reshape(u.batched...)
		out, err := u.m.UNet.ForwardProjected(x, proj, u.context)
		if err != nil {
			return nil, err
		}
		out = out.Reshape(batch, -1)
		return tensor.Concat(0, tensor.Combine(cstep, tensor.Concat(0, state, out)), out), nil
	}
	in := []*tensor.Tensor{u.state, proj, cin, cstep}
	var packed *tensor.Tensor
	switch {
	case u.eager:
		packed = u.eagerStep(f, in, &err)
	case u.call == nil:
		call, first, cerr := tensor.CaptureCall(b, func(in []*tensor.Tensor) *tensor.Tensor {
			out, err := f(in)
			if err != nil { // the shapes come from Forward's own, checked by the eager first step
				panic(fmt.Sprintf("pipeline: denoising step to capture: %v", err))
			}
			return out
		}, in...)
		if errors.Is(cerr, tensor.ErrUnsupported) {
			u.eager = true
			packed = u.eagerStep(f, in, &err)
			break
		}
		u.call, packed, err = call, first, cerr
	default:
		packed, err = u.call.Run(in...)
	}
	if err != nil {
		return nil, nil, err
	}
	u.state = packed.Narrow(0, 0, slots)
	latents = u.state.Narrow(0, 0, 1).Reshape(u.shape...)
	pred = packed.Narrow(0, slots, batch).Reshape(u.batched...)
	packed.Free() // the narrowed copies are what outlives the step
	return latents, pred, nil
}

// eagerStep runs f with its intermediates handed back at the end.
func (u *linearSteps) eagerStep(f func([]*tensor.Tensor) (*tensor.Tensor, error), in []*tensor.Tensor, err *error) *tensor.Tensor {
	return tensor.Scoped(u.state.Backend(), func() *tensor.Tensor {
		out, e := f(in)
		*err = e
		return out
	})
}

func (u *linearSteps) close() { u.call.Close() }

// stepper makes a generation's denoising steps, in order: step runs step i
// at timestep t and returns the latents after it and the UNet's prediction.
type stepper interface {
	step(i int, t float64) (latents, pred *tensor.Tensor, err error)
	close()
}

// stepper picks how steps run: whole steps (linearSteps) for a Linear
// scheduler under a UNet whose inputs are all device tensors; else the UNet
// call alone captured (unetSteps) and the scheduler's Step eagerly (DDIM's
// clip_sample, text_time conditioning).
func (m *Model) stepper(s sched.Scheduler, context *unet.Context, latents *tensor.Tensor, guidance float64) stepper {
	if l, ok := sched.AsLinear(s); ok && m.UNet.Config.AdditionEmbedType != unet.TextTime {
		return m.linearSteps(context, l, latents, guidance)
	}
	return &schedSteps{u: m.unetSteps(context), s: s, latents: latents, guidance: guidance}
}

// schedSteps are steps of a UNet call (unetSteps), the guidance combine and
// the scheduler's eager Step.
type schedSteps struct {
	u        *unetSteps
	s        sched.Scheduler
	latents  *tensor.Tensor
	guidance float64
}

func (q *schedSteps) step(i int, t float64) (latents, pred *tensor.Tensor, err error) {
	x, times := q.latents, []float64{t}
	cfg := GuidanceBatch(q.guidance) == 2
	if cfg {
		x, times = tensor.Concat(0, x, x), []float64{t, t}
	}
	pred, err = q.u.predict(q.s.ScaleModelInput(x, i), times)
	if err != nil {
		return nil, nil, err
	}
	out := pred
	if cfg {
		parts := out.Chunk(2, 0)
		out = parts[0].Add(parts[1].Sub(parts[0]).Scale(q.guidance))
	}
	q.latents = q.s.Step(out, q.latents, i)
	return q.latents, pred, nil
}

func (q *schedSteps) close() { q.u.close() }
