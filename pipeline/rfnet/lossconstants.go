package rfnet

import (
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// The losses' constants on the device: the box masks, which a run uploads
// once before its first pass (objectLoop, the overall loop), and the
// overall run's reference maps, uploaded at the start of each step (the
// loop's before), rather than in every guidance pass: the passes allocate
// inside scopes that free what they allocate, so a cache filled in a pass
// would not outlive it, and a pass that uploads nothing is one a CUDA graph
// could hold. A loss given none (the tests' losses) uploads its own in the
// pass.

// gridMask is a 0/1 mask over one attention grid [h·w] on the device, its
// complement, its host values (the reference term weighs the reference map
// by them on the host) and how many cells it holds.
type gridMask struct {
	in, out *tensor.Tensor
	host    []float64
	inside  int
}

func newGridMask(b tensor.Backend, d tensor.DType, m []float64) gridMask {
	n := tensor.Shape{len(m)}
	return gridMask{in: tensor.FromFloat64(b, d, n, m), out: tensor.FromFloat64(b, d, n, inverse(m)), host: m, inside: count(m)}
}

// attnGrid is an attention layer's grid, h × w cells.
type attnGrid struct{ h, w int }

// attentionGrids are the grids of the UNet's cross-attention layers, by key.
func attentionGrids(layers []unet.Layer) map[string]attnGrid {
	gs := map[string]attnGrid{}
	for _, l := range layers {
		gs[l.Key] = attnGrid{l.H, l.W}
	}
	return gs
}

// gridsOf are the grids of the maps a pass captured.
func gridsOf(maps map[string]capture) map[string]attnGrid {
	gs := map[string]attnGrid{}
	for k, c := range maps {
		gs[k] = attnGrid{c.h, c.w}
	}
	return gs
}

// keyMasks are one mask at each steering key's grid.
type keyMasks map[string]gridMask

// newKeyMasks is the union of boxes at the grid of each of keys (a key
// without a grid gets none: the loss reports the missing layer).
func newKeyMasks(b tensor.Backend, d tensor.DType, grids map[string]attnGrid, keys []string, boxes ...Box) keyMasks {
	km := keyMasks{}
	for _, k := range keys {
		g, ok := grids[k]
		if !ok {
			continue
		}
		ms := make([][]float64, len(boxes))
		for i, box := range boxes {
			ms[i] = box.mask(g.h, g.w)
		}
		km[k] = newGridMask(b, d, union(ms...))
	}
	return km
}

// placeOf is the backend and dtype of the maps a pass captured (ok false:
// it captured none): where a loss given no constants uploads its own.
func placeOf(maps map[string]capture) (b tensor.Backend, d tensor.DType, ok bool) {
	for _, c := range maps {
		return c.probs.Backend(), c.probs.DType(), true
	}
	return nil, d, false
}

// masksOf are the masks of boxes at the grids of maps, on their backend in
// their dtype: what a loss given no masks uploads in its pass.
func masksOf(maps map[string]capture, keys []string, boxes ...Box) keyMasks {
	b, d, ok := placeOf(maps)
	if !ok {
		return keyMasks{}
	}
	return newKeyMasks(b, d, gridsOf(maps), keys, boxes...)
}

// overallMasks are the overall loss's masks: for each phrase the union of
// its objects' scene boxes (the suppression term), for each object its
// scene box (the reference term), at each steering key.
type overallMasks struct {
	phrases, objects []keyMasks
}

func newOverallMasks(b tensor.Backend, d tensor.DType, grids map[string]attnGrid, s *spec, keys []string) *overallMasks {
	om := &overallMasks{}
	for _, p := range s.Phrases {
		boxes := make([]Box, len(p.Objects))
		for i, j := range p.Objects {
			boxes[i] = s.Objects[j].Box
		}
		om.phrases = append(om.phrases, newKeyMasks(b, d, grids, keys, boxes...))
	}
	for _, o := range s.Objects {
		om.objects = append(om.objects, newKeyMasks(b, d, grids, keys, o.Box))
	}
	return om
}

// overallMasksOf is newOverallMasks at the grids of maps, on their backend
// in their dtype.
func overallMasksOf(maps map[string]capture, s *spec, keys []string) *overallMasks {
	b, d, ok := placeOf(maps)
	if !ok {
		return &overallMasks{}
	}
	return newOverallMasks(b, d, gridsOf(maps), s, keys)
}

// references are the reference term's constants at one step: each object's
// saved map at each steering key, masked to its scene box and normalized
// inside it (normalizedReference), [heads, h·w] on the device.
type references struct {
	step    int
	objects []map[string]*tensor.Tensor
}

// newReferences uploads the references of objs at step: every object's map
// at each of keys, masked by masks. An object without a saved map at a key
// gets none there (the loss reports it).
func newReferences(b tensor.Backend, d tensor.DType, objs []placed, step int, masks *overallMasks, keys []string, eps float64) *references {
	refs := &references{step: step}
	for j, o := range objs {
		m := map[string]*tensor.Tensor{}
		for _, k := range keys {
			saved, ok := o.saved[step][k]
			mask, masked := masks.objects[j][k]
			if ok && masked {
				m[k] = tensor.FromFloat64(b, d, tensor.Shape{saved.heads, saved.h * saved.w}, normalizedReference(saved, mask, eps))
			}
		}
		refs.objects = append(refs.objects, m)
	}
	return refs
}

// next are the references at step: newReferences, written into r's
// buffers where the backend can (tensor.Refill), so that a guidance pass
// captured as a graph at an earlier step reads this step's; r's own where
// it cannot. r may be nil (the first step).
func (r *references) next(b tensor.Backend, d tensor.DType, objs []placed, step int, masks *overallMasks, keys []string, eps float64) *references {
	n := newReferences(b, d, objs, step, masks, keys, eps)
	if r == nil || len(r.objects) != len(n.objects) {
		r.free()
		return n
	}
	for j, m := range n.objects {
		for k, t := range m {
			if old, ok := r.objects[j][k]; ok && old.Shape().Equal(t.Shape()) && tensor.Refill(old, t) {
				t.Free()
				m[k] = old
				delete(r.objects[j], k)
			}
		}
	}
	r.free() // what was not refilled
	return n
}

// free hands the references' device memory back (nil: nothing).
func (r *references) free() {
	if r == nil {
		return
	}
	for _, m := range r.objects {
		for _, t := range m {
			t.Free()
		}
	}
}
