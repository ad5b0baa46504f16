package rfnet

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// lossFixture sets up a float64 tiny model, the test plan's spec and the
// single-object and overall loss functions at a 16×16 latent.
type lossFixture struct {
	m       *runner
	spec    *spec
	objs    []placed
	soLoop  loop
	allLoop loop
	z       *tensor.Tensor
}

func newLossFixture(t *testing.T) *lossFixture {
	return newLossFixtureOn(t, cpu.New(), tensor.Float64, testConfig())
}

// newLossFixtureOn builds the fixture with configuration c on backend b in
// dtype d (the same values on every backend: the GPU parity test compares them).
func newLossFixtureOn(t *testing.T, b tensor.Backend, d tensor.DType, c Config) *lossFixture {
	pm := tinyModelOn(t, "tiny-sd2", b, d)
	m := &runner{Model: pm, cfg: c, emit: func(TraceEvent) {}}
	s := newSpec(testPlan(), c)
	runSAA(s.Objects, Config{SAA: false}, nil)
	if err := s.buildPrompts(pm.Tokenizer); err != nil {
		t.Fatal(err)
	}
	sc, err := sched.New("ddim", pm.Variant.Sched, c.Steps)
	if err != nil {
		t.Fatal(err)
	}
	cond, _ := pm.EncodePrompt(s.Objects[0].Prompt)
	overall, _ := pm.EncodePrompt(s.Overall)
	o := s.Objects[0]
	f := &lossFixture{m: m, spec: s, z: backendtest.Randn(pm.Backend, d, 5, 1, 4, 16, 16)}
	f.soLoop = loop{sched: sc, cond: cond, keys: c.SteeringKeys, scale: c.LossScale,
		loss: func(_ int, maps map[string]capture) (steeringLoss, error) {
			total, err := boxLoss(maps, c.SteeringKeys, o.Tokens, o.SOBox, nil, c)
			return steeringLoss{total: total}, err
		}}
	// Reference maps: positive random values on each object's grids, as a shifted SO run would give.
	layers := map[string][2]int{}
	for _, l := range pm.UNet.CrossAttentionLayers(16, 16) {
		layers[l.Key] = [2]int{l.H, l.W}
	}
	for j := range s.Objects {
		sm := savedMaps{}
		for i, k := range c.SteeringKeys {
			g := layers[k]
			heads := 4
			v := backendtest.Uniform(pm.Backend, tensor.Float64, uint64(10*j+i), 0.01, 1, heads*g[0]*g[1]).Float64s()
			sm[k] = savedMap{heads: heads, h: g[0], w: g[1], v: v}
		}
		f.objs = append(f.objs, placed{saved: []savedMaps{sm}})
	}
	f.allLoop = loop{sched: sc, cond: overall, keys: c.SteeringKeys, scale: c.OverallLossScale,
		loss: func(step int, maps map[string]capture) (steeringLoss, error) {
			return overallLoss(maps, s, f.objs, step, nil, nil, c)
		}}
	return f
}

// The gradient of each loss with respect to the latent matches central finite
// differences along random directions (float64, tiny SD 2.x UNet).
func TestLossGradientsMatchFiniteDifferences(t *testing.T) {
	f := newLossFixture(t)
	ts := f.soLoop.sched.Timesteps()
	for _, c := range []struct {
		name string
		l    loop
	}{{"box loss", f.soLoop}, {"overall loss", f.allLoop}} {
		m, grad, err := f.m.steeringPass(c.l, f.z, 0, ts[0])
		loss := m.loss
		if err != nil {
			t.Fatal(err)
		}
		g := grad.Float64s()
		for dir := uint64(0); dir < 3; dir++ {
			v := backendtest.RandnValues(100+dir, len(g))
			eval := func(h float64) float64 {
				zv := f.z.Float64s()
				for i := range zv {
					zv[i] += h * v[i]
				}
				m, _, err := f.m.steeringPass(c.l, tensor.FromFloat64(f.z.Backend(), tensor.Float64, f.z.Shape(), zv), 0, ts[0])
				if err != nil {
					t.Fatal(err)
				}
				return m.loss
			}
			const h = 1e-5
			num := (eval(h) - eval(-h)) / (2 * h)
			ana := 0.0
			for i := range g {
				ana += g[i] * v[i]
			}
			if rel := math.Abs(num-ana) / math.Max(math.Abs(num), 1e-12); rel > 1e-6 {
				t.Errorf("%s: direction %d: analytic %.10g, finite differences %.10g (relative error %.2g)", c.name, dir, ana, num, rel)
			}
		}
		t.Logf("%s: loss %.6g, |grad| %.3g", c.name, loss, norm(g))
	}
}

func norm(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// oneStep is a one-step DDIM schedule at the fixture's model.
func oneStep(t *testing.T, f *lossFixture) sched.Scheduler {
	s, err := sched.New("ddim", f.m.Variant.Sched, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
