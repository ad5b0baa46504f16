package rfnet

import (
	"errors"
	"math"

	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// guidancePass is a guidance pass (the UNet to the last map the losses
// read, the losses, the backward to the model input) of one loop, or of a
// batch's set of objects still iterating, as one function of device
// tensors: the model input and the timesteps' projection in, the input's
// gradient and the scaled losses (with the overall loss's terms) packed
// out. Nothing else changes between the passes of a loop or a set: the
// shapes, the prepared text and the losses' constants (the masks, and the
// reference maps that the overall loop refills in place at each step:
// references.next). So the passes run as tensor.Passes runs them: the
// first eagerly (where an error of a loss is an error and not a panic
// inside a capture), the second captured where the backend can (CUDA
// graphs), every later one replayed.
type guidancePass struct {
	r      *runner
	text   *unet.Context     // the objects' conds, prepared
	scheds []sched.Scheduler // each object's (its model input's scale)
	scales []float64         // each object's loss scale
	keys   []string          // the layers the losses read
	// losses are the objects' unscaled losses from their maps.
	losses func(step int, maps []map[string]capture) ([]steeringLoss, error)
	// sup and ref say which of the overall loss's terms the packed output
	// holds after the losses (from the first pass: a loss's terms are the
	// same at every step; one object only).
	sup, ref bool
	// eager makes every pass eager (a benchmark's eager pass).
	eager  bool
	passes *tensor.Passes
	// k and step are the pass's objects and step, which the eager passes
	// read (a captured pass replays the step it was captured at: nothing in
	// it depends on the step but the refilled references).
	k, step int
}

// loopGuidance is the guidance pass of loop l (prepared set).
func (r *runner) loopGuidance(l loop) *guidancePass {
	return &guidancePass{r: r, text: l.prepared, scheds: []sched.Scheduler{l.sched}, scales: []float64{l.scale}, keys: l.keys,
		losses: func(step int, maps []map[string]capture) ([]steeringLoss, error) {
			sl, err := l.loss(step, maps[0])
			return []steeringLoss{sl}, err
		}}
}

// run is the pass on the objects' latents zs at step i (timestep t): each
// one's measurement and gradient. Only the gradients outlive it.
func (g *guidancePass) run(zs []*tensor.Tensor, step int, t float64) ([]measurement, []*tensor.Tensor, error) {
	r, k := g.r, len(zs)
	// A loss depends on its latent through the model input alone, which
	// every scheduler makes by one scalar per step (ScaleModelInput): the
	// input's gradient scaled the same way is the latent's.
	xs, times := make([]*tensor.Tensor, k), make([]float64, k)
	for a, z := range zs {
		xs[a], times[a] = g.scheds[a].ScaleModelInput(z, step), t
	}
	x := tensor.Concat(0, xs...)
	proj := r.UNet.TimeProjection(r.Backend, r.DType, times)
	if g.passes == nil {
		g.passes = tensor.NewPasses(r.Backend, "rfnet: guidance pass", func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			return g.pass(in[0], in[1], g.k, g.step)
		})
		g.passes.Eager = g.eager
	}
	g.k, g.step = k, step
	packed, err := g.passes.Run(x, proj)
	if x != zs[0] { // one object whose scheduler does not scale: x is its latent
		x.Free()
	}
	proj.Free()
	if err != nil {
		return nil, nil, err
	}
	n := zs[0].Numel()
	ms, grads := make([]measurement, k), make([]*tensor.Tensor, k)
	// One copy to the host: the latents' gradients (for their norms, on the
	// host: a sum of squares over the latent can overflow fp16) and the
	// losses after them.
	host := make([]*tensor.Tensor, 0, k+1)
	for a, z := range zs {
		grads[a] = g.scheds[a].ScaleModelInput(packed.Narrow(0, a*n, n).Reshape(z.Shape()...), step)
		host = append(host, grads[a].Reshape(-1))
	}
	host = append(host, packed.Narrow(0, k*n, packed.Numel()-k*n))
	all := tensor.Concat(0, host...)
	values := all.Float64s()
	all.Free()
	tail := values[k*n:]
	for a := range zs {
		sq := 0.0
		for _, v := range values[a*n : (a+1)*n] {
			sq += v * v
		}
		ms[a] = measurement{loss: tail[a], gradNorm: math.Sqrt(sq)}
	}
	packed.Free()
	next := k
	if g.sup {
		ms[0].suppression, next = ptr(tail[next]), next+1
	}
	if g.ref {
		ms[0].reference = ptr(tail[next])
	}
	return ms, grads, nil
}

// pass is the function run captures on x [k, latent...]: [the gradient of
// the sum of the k scaled losses with respect to x, each scaled loss, the
// suppression and reference terms where a lone object's loss has them].
func (g *guidancePass) pass(x, proj *tensor.Tensor, k, step int) (*tensor.Tensor, error) {
	tape := tensor.NewTape()
	xt := tape.Track(x)
	maps := make([]map[string]capture, k)
	for a := range maps {
		maps[a] = map[string]capture{}
	}
	want := keySet(g.keys)
	got := 0
	hook := func(layer unet.Layer, p *tensor.Tensor) bool {
		if want[layer.Key] {
			for a := range maps {
				probs := p
				if k > 1 {
					probs = p.Narrow(0, a, 1)
				}
				maps[a][layer.Key] = capture{probs: probs, h: layer.H, w: layer.W}
			}
			got++
		}
		return got == len(want)
	}
	if _, err := g.r.UNet.ForwardProjectedHook(xt, proj, g.text, hook); err != nil && !errors.Is(err, unet.ErrStopped) {
		return nil, err
	}
	sls, err := g.losses(step, maps)
	if err != nil {
		return nil, err
	}
	parts := []*tensor.Tensor{nil}
	var sum *tensor.Tensor
	for a, sl := range sls {
		loss := sl.total.Scale(g.scales[a])
		sum = add(sum, loss)
		parts = append(parts, loss.Reshape(1))
	}
	grads, err := tape.Backward(sum, xt)
	if err != nil {
		return nil, err
	}
	parts[0] = grads[0].Reshape(-1)
	if g.passes.Calls() == 0 && k == 1 {
		g.sup, g.ref = sls[0].suppression != nil, sls[0].reference != nil
	}
	if g.sup {
		parts = append(parts, sls[0].suppression.Reshape(1))
	}
	if g.ref {
		parts = append(parts, sls[0].reference.Reshape(1))
	}
	return tensor.Concat(0, parts...), nil
}

// close releases the captured pass (nil: nothing).
func (g *guidancePass) close() {
	if g != nil {
		g.passes.Close()
	}
}
