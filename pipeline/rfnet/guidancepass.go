package rfnet

import (
	"errors"
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// guidancePass is a loop's guidance pass (the UNet to the last map the loss
// reads, the loss, the backward to the model input) as one function of
// device tensors: the model input and the timestep's projection in, the
// input's gradient and the scaled loss (with its terms) packed out. Nothing
// else changes between the loop's passes: the shapes, the prepared text and
// the loss's constants (the masks, and the reference maps that the overall
// loop refills in place at each step: references.next). So on a backend
// that captures (CUDA graphs) the loop's second pass is captured
// (tensor.CaptureCall) and every later one replays it; the first runs
// eagerly, where an error of the loss is an error and not a panic inside a
// capture. Elsewhere, with graphs off, or when the capture fails (the
// backend says why), every pass runs eagerly: the same ops.
type guidancePass struct {
	r     *runner
	l     loop // prepared set
	calls int  // passes so far
	// sup and ref say which of the overall loss's terms the packed output
	// holds after the loss (from the first pass: the loss's terms are the
	// same at every step).
	sup, ref bool
	call     *tensor.Call
	eager    bool
}

func (r *runner) newGuidancePass(l loop) *guidancePass { return &guidancePass{r: r, l: l} }

// run is the pass on z at step i (timestep t): the measurement and the
// gradient with respect to z. Only the gradient outlives it.
func (g *guidancePass) run(z *tensor.Tensor, step int, t float64) (measurement, *tensor.Tensor, error) {
	r, l := g.r, g.l
	// The loss depends on z through the model input alone, which every
	// scheduler makes by one scalar per step (ScaleModelInput): the input's
	// gradient scaled the same way is z's.
	x := l.sched.ScaleModelInput(z, step)
	proj := r.UNet.TimeProjection(r.Backend, r.DType, []float64{t})
	f := func(in []*tensor.Tensor) (*tensor.Tensor, error) { return g.pass(in[0], in[1], step) }
	var packed *tensor.Tensor
	var err error
	switch {
	case g.eager || g.calls == 0:
		packed = tensor.Scoped(r.Backend, func() *tensor.Tensor {
			var p *tensor.Tensor
			p, err = f([]*tensor.Tensor{x, proj})
			return p
		})
	case g.call == nil:
		call, first, cerr := tensor.CaptureCall(r.Backend, func(in []*tensor.Tensor) *tensor.Tensor {
			p, err := f(in)
			if err != nil { // the first pass ran the same function without one
				panic(fmt.Sprintf("rfnet: guidance pass to capture: %v", err))
			}
			return p
		}, x, proj)
		if errors.Is(cerr, tensor.ErrUnsupported) {
			g.eager = true
			return g.run(z, step, t)
		}
		g.call, packed, err = call, first, cerr
	default:
		packed, err = g.call.Run(x, proj)
	}
	g.calls++
	if x != z { // a scheduler without input scaling hands z back
		x.Free()
	}
	proj.Free()
	if err != nil {
		return measurement{}, nil, err
	}
	n := z.Numel()
	tail := packed.Narrow(0, n, packed.Numel()-n).Float64s()
	grad := l.sched.ScaleModelInput(packed.Narrow(0, 0, n).Reshape(z.Shape()...), step)
	packed.Free()
	// On the host: a sum of squares over the latent can overflow fp16.
	sq := 0.0
	for _, v := range grad.Float64s() {
		sq += v * v
	}
	m := measurement{loss: tail[0], gradNorm: math.Sqrt(sq)}
	next := 1
	if g.sup {
		m.suppression, next = ptr(tail[next]), next+1
	}
	if g.ref {
		m.reference = ptr(tail[next])
	}
	return m, grad, nil
}

// pass is the function run captures: [gradient with respect to x, scaled
// loss, its suppression and reference terms where the loss has them].
func (g *guidancePass) pass(x, proj *tensor.Tensor, step int) (*tensor.Tensor, error) {
	l := g.l
	tape := tensor.NewTape()
	xt := tape.Track(x)
	maps := map[string]capture{}
	want := keySet(l.keys)
	hook := func(layer unet.Layer, p *tensor.Tensor) bool {
		if want[layer.Key] {
			maps[layer.Key] = capture{probs: p, h: layer.H, w: layer.W}
		}
		return len(maps) == len(want)
	}
	if _, err := g.r.UNet.ForwardProjectedHook(xt, proj, l.prepared, hook); err != nil && !errors.Is(err, unet.ErrStopped) {
		return nil, err
	}
	sl, err := l.loss(step, maps)
	if err != nil {
		return nil, err
	}
	loss := sl.total.Scale(l.scale)
	grads, err := tape.Backward(loss, xt)
	if err != nil {
		return nil, err
	}
	parts := []*tensor.Tensor{grads[0].Reshape(-1), loss.Reshape(1)}
	if g.calls == 0 {
		g.sup, g.ref = sl.suppression != nil, sl.reference != nil
	}
	if g.sup {
		parts = append(parts, sl.suppression.Reshape(1))
	}
	if g.ref {
		parts = append(parts, sl.reference.Reshape(1))
	}
	return tensor.Concat(0, parts...), nil
}

func (g *guidancePass) close() { g.call.Close() }
