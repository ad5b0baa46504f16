package rfnet

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// denoisePass is the denoising pass of a steered run (steer: one loop) or of
// a batch of single-object runs (steerBatch: n loops), the UNet's CFG call
// on [the n uncond inputs; the n cond inputs], as one function of device
// tensors: the model input and the timesteps' projection in; the
// prediction, the attention columns each loop saves (its saveTokens at its
// save layers) and the maps each loop's loss reads packed out, all from the
// cond halves. Everything a step keeps of the pass leaves it through that
// output, so the pass does no host work and launches the same work at every
// step: the passes run as tensor.Passes runs them (the first eagerly, the
// second captured where the backend can: CUDA graphs, every later one
// replayed).
//
// The loss maps are packed at every step, steered or not (a few MiB at SD's
// sizes), so that one graph serves all; a step's loss after its update is
// computed from them outside the pass, where a loss's error is an error,
// and only when the step steered.
type denoisePass struct {
	r    *runner
	ls   []loop
	text *unet.Context // [uncond...; cond...], prepared
	// parts describe the packed output after the prediction, from the
	// first pass: the saved columns, then the loss maps.
	parts       []packedPart
	saved       int          // the saved columns' values, all parts
	pred        tensor.Shape // the prediction's
	passes      *tensor.Passes
	savedLayers []map[string]bool // each loop's saved layers
	lossLayers  []map[string]bool // each loop's loss layers
}

// packedPart is a saved column (token ≥ 0: an index into the loop's
// saveTokens; [heads·h·w]) or a loss map (token -1; [1, heads, h·w, cols])
// of loop object at layer key in a denoising pass's packed output.
type packedPart struct {
	object, token  int
	key            string
	heads, h, w, n int // n: the part's values
	cols           int // the loss map's context length
}

// newDenoisePass is the pass of loops ls under text, their [uncond...;
// cond...] prepared (which must outlive the pass).
func (r *runner) newDenoisePass(ls []loop, text *unet.Context) *denoisePass {
	d := &denoisePass{r: r, ls: ls, text: text}
	d.passes = tensor.NewPasses(r.Backend, "rfnet: denoising pass", func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		return d.pass(in[0], in[1])
	})
	for _, l := range ls {
		d.savedLayers = append(d.savedLayers, keySet(l.save))
		lo := map[string]bool{}
		if l.loss != nil {
			lo = keySet(l.keys)
		}
		d.lossLayers = append(d.lossLayers, lo)
	}
	return d
}

// denoised is what a denoising pass gives its step: the prediction (the
// caller's), each loop's saved maps by token, and each loop's loss after
// (NaN where it was not asked for).
type denoised struct {
	pred  *tensor.Tensor
	saved [][]savedMaps // [loop][token]
	after []float64
}

// run is the pass on x [2n, latent...] at times (its own: run keeps
// nothing of it), with the losses after of the loops measure says (from
// the loss maps).
func (d *denoisePass) run(x *tensor.Tensor, times []float64, step int, measure []bool) (denoised, error) {
	r := d.r
	proj := r.UNet.TimeProjection(r.Backend, r.DType, times)
	defer proj.Free()
	packed, err := d.passes.Run(x, proj)
	if err != nil {
		return denoised{}, err
	}
	n := d.pred.Numel()
	out := denoised{pred: packed.Narrow(0, 0, n).Reshape(d.pred...), after: make([]float64, len(d.ls))}
	if n < packed.Numel() { // else the prediction is all of it (Narrow gave packed)
		defer packed.Free()
	}
	// The saved columns come to the host in one copy.
	var host []float64
	if d.saved > 0 {
		cols := packed.Narrow(0, n, d.saved)
		host = cols.Float64s()
		cols.Free()
	}
	out.saved = make([][]savedMaps, len(d.ls))
	for j, l := range d.ls {
		out.saved[j] = make([]savedMaps, len(l.saveTokens))
		for t := range out.saved[j] {
			out.saved[j][t] = savedMaps{}
		}
		out.after[j] = math.NaN()
	}
	at := 0
	for _, p := range d.parts {
		if p.token < 0 {
			break // the loss maps follow the columns
		}
		out.saved[p.object][p.token][p.key] = savedMap{heads: p.heads, h: p.h, w: p.w, v: host[at : at+p.n]}
		at += p.n
	}
	// The losses after, in a scope: only their values outlive it.
	tensor.Scoped(r.Backend, func() *tensor.Tensor {
		maps := make([]map[string]capture, len(d.ls))
		for j := range maps {
			maps[j] = map[string]capture{}
		}
		at := n
		for _, p := range d.parts {
			if p.token < 0 && measure[p.object] {
				probs := packed.Narrow(0, at, p.n).Reshape(1, p.heads, p.h*p.w, p.cols)
				maps[p.object][p.key] = capture{probs: probs, h: p.h, w: p.w}
			}
			at += p.n
		}
		for j, l := range d.ls {
			if !measure[j] || l.loss == nil {
				continue
			}
			sl, lerr := l.loss(step, maps[j])
			if lerr != nil {
				err = lerr
				return nil
			}
			out.after[j] = sl.total.Item()
		}
		return nil
	})
	if err != nil {
		out.pred.Free()
		return denoised{}, err
	}
	return out, nil
}

// pass is the function run captures: [the prediction; the saved columns;
// the loss maps], flat, in the order of parts.
func (d *denoisePass) pass(x, proj *tensor.Tensor) (*tensor.Tensor, error) {
	n := len(d.ls)
	type kept struct {
		probs *tensor.Tensor // [1, heads, h·w, cols], the cond half's
		h, w  int
	}
	layers := make([]map[string]kept, n)
	for j := range layers {
		layers[j] = map[string]kept{}
	}
	hook := func(layer unet.Layer, p *tensor.Tensor) bool {
		for j := range d.ls {
			if d.savedLayers[j][layer.Key] || d.lossLayers[j][layer.Key] {
				layers[j][layer.Key] = kept{probs: p.Narrow(0, n+j, 1), h: layer.H, w: layer.W}
			}
		}
		return false
	}
	out, err := d.r.UNet.ForwardProjectedHook(x, proj, d.text, hook)
	if err != nil {
		return nil, err
	}
	packed := []*tensor.Tensor{out.Reshape(-1)}
	var parts []packedPart
	saved := 0
	for j, l := range d.ls {
		seen := map[string]bool{}
		for _, key := range l.save {
			k, ok := layers[j][key]
			if !ok || seen[key] { // a layer the UNet lacks is left out, as a hook would
				continue
			}
			seen[key] = true
			for t, token := range l.saveTokens {
				col := k.probs.Narrow(3, token, 1) // [1, heads, h·w, 1]
				p := packedPart{object: j, token: t, key: key, heads: k.probs.Dim(1), h: k.h, w: k.w, n: col.Numel()}
				parts, packed, saved = append(parts, p), append(packed, col.Reshape(-1)), saved+p.n
			}
		}
	}
	for j, l := range d.ls {
		seen := map[string]bool{}
		for _, key := range l.keys {
			k, ok := layers[j][key]
			if !ok || !d.lossLayers[j][key] || seen[key] {
				continue // the loss reports a missing layer
			}
			seen[key] = true
			p := packedPart{object: j, token: -1, key: key, heads: k.probs.Dim(1), h: k.h, w: k.w, n: k.probs.Numel(), cols: k.probs.Dim(3)}
			parts, packed = append(parts, p), append(packed, k.probs.Reshape(-1))
		}
	}
	if d.passes.Calls() == 0 {
		d.parts, d.saved, d.pred = parts, saved, out.Shape()
	}
	return tensor.Concat(0, packed...), nil
}

// close releases the captured pass (nil: nothing).
func (d *denoisePass) close() {
	if d != nil {
		d.passes.Close()
	}
}
