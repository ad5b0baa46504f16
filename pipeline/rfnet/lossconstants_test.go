package rfnet

import (
	"sync/atomic"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// uploadCounter counts the copies from the host its backend makes.
type uploadCounter struct {
	tensor.Backend
	n atomic.Int64
}

func (u *uploadCounter) FromFloat64(d tensor.DType, v []float64) tensor.Buffer {
	u.n.Add(1)
	return u.Backend.FromFloat64(d, v)
}

func (u *uploadCounter) FromFloat32(d tensor.DType, v []float32) tensor.Buffer {
	u.n.Add(1)
	return u.Backend.FromFloat32(d, v)
}

func (u *uploadCounter) FromInt32(v []int32) tensor.Buffer {
	u.n.Add(1)
	return u.Backend.FromInt32(v)
}

func (u *uploadCounter) FromRaw(d, src tensor.DType, raw []byte) tensor.Buffer {
	u.n.Add(1)
	return u.Backend.FromRaw(d, src, raw)
}

// With the box masks and the step's reference maps uploaded beforehand (as
// the runner does: objectLoop, the overall loop's before), a guidance pass
// copies nothing from the host but the timestep's projection, in the
// single-object loss and in the overall one, and its loss equals the one
// that uploads its constants in the pass.
func TestGuidancePassUploadsNoLossConstants(t *testing.T) {
	b := &uploadCounter{Backend: cpu.New()}
	c := testConfig()
	f := newLossFixtureOn(t, b, tensor.Float32, c)
	grids := attentionGrids(f.m.UNet.CrossAttentionLayers(16, 16))
	o := f.spec.Objects[0]
	objectMasks := newKeyMasks(b, tensor.Float32, grids, c.SteeringKeys, o.SOBox)
	overall := newOverallMasks(b, tensor.Float32, grids, f.spec, c.SteeringKeys)
	const step = 0
	refs := newReferences(b, tensor.Float32, f.objs, step, overall, c.SteeringKeys, c.RefEps)
	ts := f.soLoop.sched.Timesteps()

	so, all := f.soLoop, f.allLoop
	so.loss = func(_ int, maps map[string]capture) (steeringLoss, error) {
		total, err := boxLoss(maps, c.SteeringKeys, o.Tokens, o.SOBox, objectMasks, c)
		return steeringLoss{total: total}, err
	}
	all.loss = func(step int, maps map[string]capture) (steeringLoss, error) {
		return overallLoss(maps, f.spec, f.objs, step, overall, refs, c)
	}
	for _, l := range []struct {
		name            string
		inPass, hoisted loop
	}{{"single-object", f.soLoop, so}, {"overall", f.allLoop, all}} {
		before := b.n.Load()
		want, _, err := f.m.steeringPass(l.inPass, f.z, step, ts[step])
		if err != nil {
			t.Fatal(err)
		}
		uploading := b.n.Load() - before
		before = b.n.Load()
		got, _, err := f.m.steeringPass(l.hoisted, f.z, step, ts[step])
		if err != nil {
			t.Fatal(err)
		}
		if n := b.n.Load() - before; n != 1 || uploading <= 1 {
			t.Errorf("%s: a pass with its constants uploaded beforehand copied %d buffers from the host (want 1, the time projection); uploading them in the pass, %d",
				l.name, n, uploading)
		}
		if got.loss != want.loss {
			t.Errorf("%s: loss %v with the constants uploaded beforehand, %v uploading them in the pass", l.name, got.loss, want.loss)
		}
	}
}
