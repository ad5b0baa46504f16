package rfnet

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// The single-object box loss and the overall loss, and their gradients with
// respect to the latent, match a PyTorch implementation of the same formulas
// on the tiny diffusers UNet (testdata/rfnet/losses.*, written by
// testdata/gen/make_fixtures.py), in float64.
func TestLossesMatchReference(t *testing.T) {
	raw, err := os.ReadFile(fixtures.Path("rfnet", "losses.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Timestep float64
		Keys     []string
		SO       struct {
			Tokens []int
			Box    Box
		}
		Phrases []struct {
			Tokens []int
			Word   int
			Boxes  []Box
			Refs   []string
		}
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	f, err := weights.Open(fixtures.Path("rfnet", "losses.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := cpu.New()
	load := func(name string) *tensor.Tensor {
		x, err := f.Load(b, name, tensor.Float64)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	pm := tinyModel(t, "tiny-sd2", tensor.Float64)
	c := Default()
	m := &runner{Model: pm, cfg: c, emit: func(TraceEvent) {}}
	sc, _ := sched.New("ddim", pm.Variant.Sched, 50)

	// The spec and placed objects the overall loss reads, built from the fixture.
	s := &spec{}
	var objs []placed
	for _, p := range meta.Phrases {
		ph := phrase{Tokens: p.Tokens, Word: p.Word}
		for i, box := range p.Boxes {
			ph.Objects = append(ph.Objects, len(s.Objects))
			s.Objects = append(s.Objects, object{Box: box})
			sm := savedMaps{}
			for _, k := range meta.Keys {
				ref := load(p.Refs[i] + "/" + k)
				n := ref.Dim(1)
				side := map[int]int{4: 2, 16: 4, 64: 8, 256: 16}[n]
				sm[k] = savedMap{heads: ref.Dim(0), h: side, w: side, v: ref.Float64s()}
			}
			objs = append(objs, placed{saved: []savedMaps{sm}})
		}
		s.Phrases = append(s.Phrases, ph)
	}
	for _, c2 := range []struct {
		name string
		l    loop
	}{
		{"so", loop{sched: sc, cond: load("context_so"), keys: meta.Keys, scale: 1,
			loss: func(_ int, maps map[string]capture) (steeringLoss, error) {
				total, err := boxLoss(maps, meta.Keys, meta.SO.Tokens, meta.SO.Box, nil, c)
				return steeringLoss{total: total}, err
			}}},
		{"overall", loop{sched: sc, cond: load("context_all"), keys: meta.Keys, scale: 1,
			loss: func(step int, maps map[string]capture) (steeringLoss, error) {
				return overallLoss(maps, s, objs, step, nil, nil, c)
			}}},
	} {
		got, grad, err := m.steeringPass(c2.l, load("z"), 0, meta.Timestep)
		loss := got.loss
		if err != nil {
			t.Fatal(err)
		}
		want := load("loss_" + c2.name).Item()
		// Agreement is about 1e-8: diffusers computes some parts in float32 even
		// in a float64 model (the timestep embedding).
		if d := (loss - want) / want; d > 1e-6 || d < -1e-6 {
			t.Errorf("%s loss %.12g, reference %.12g", c2.name, loss, want)
		}
		if e := fixtures.RelL2(grad, load("grad_"+c2.name)); e > 1e-5 {
			t.Errorf("%s gradient: relative L2 error %.3g", c2.name, e)
		}
		t.Logf("%s: loss %.9g (reference %.9g), gradient rel. L2 error %.2g", c2.name, loss, want, fixtures.RelL2(grad, load("grad_"+c2.name)))
	}
}
