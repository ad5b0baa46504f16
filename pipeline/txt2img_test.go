package pipeline

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

// loadTiny loads a reference model from its diffusers folder, or from the
// single file with the folder's tokenizer and configs. Its tokenizer cuts
// prompts as open_clip does: make_fixtures.py tokenized the reference runs
// with open_clip (its environment has no transformers), which differs from
// diffusers' split on SD 2.x's "MOUSE!!!".
func loadTiny(t testing.TB, model string, single bool, d tensor.DType) *Model {
	t.Helper()
	path, o := fixtures.Path("models", model), LoadOptions{Backend: cpu.New(), DType: d, TokenizerSplit: clip.SplitOpenCLIP}
	if single {
		file := model
		if model == "tiny-sd2-v" {
			file = "tiny-sd2" // the same weights, the v configs
		}
		path = fixtures.Path("models", file+".safetensors")
		o.Tokenizer, o.ConfigDir = fixtures.Path("models", model, "tokenizer"), fixtures.Path("models", model)
	}
	m, err := Load(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// Every reference run, in both checkpoint layouts: the final latents within 1e-3
// (relative L2) and the 8-bit image within 2/255 of diffusers'.
func TestTextToImageMatchesReference(t *testing.T) {
	models := map[string]*Model{}
	for _, c := range fixtures.Cases(t) {
		want := fixtures.Tensors(t, c.Name)
		for _, single := range []bool{false, true} {
			key := c.Model + map[bool]string{false: "/folder", true: "/single"}[single]
			m := models[key]
			if m == nil {
				m = loadTiny(t, c.Model, single, tensor.Float32)
				models[key] = m
			}
			trace := want("latents_trace")
			// Step for step: the latent after every step stays within 1e-3 of diffusers'.
			worst := 0.0
			onStep := func(step, total int, latents *tensor.Tensor) {
				worst = math.Max(worst, fixtures.RelL2(latents, trace.Narrow(0, step, 1)))
			}
			res, err := m.Generate(Request{Prompt: c.Prompt, NegativePrompt: c.NegativePrompt, Steps: c.Steps,
				Guidance: c.Guidance, Scheduler: c.Scheduler, Width: 64, Height: 64, InitLatents: want("init_latents").To(tensor.Float32)}, onStep)
			if err != nil {
				t.Fatal(err)
			}
			if !(worst < 1e-3) {
				t.Errorf("%s %s: a step's latents differ by %.3g (relative L2)", c.Name, key, worst)
			}
			final := trace.Narrow(0, trace.Dim(0)-1, 1)
			if e := fixtures.RelL2(res.Latents, final); !(e < 1e-3) {
				t.Errorf("%s %s: final latents: relative L2 error %.3g", c.Name, key, e)
			}
			d := maxPixelDiff(res.Image, want("image"))
			if d > 2 {
				t.Errorf("%s %s: image differs by %d/255", c.Name, key, d)
			}
			t.Logf("%-32s %-16s latents rel. L2 %.2e, image max diff %d/255", c.Name, key, fixtures.RelL2(res.Latents, final), d)
			if (res.Truncated > 0) != c.Truncated {
				t.Errorf("%s: truncated %d tokens, reference says %v", c.Name, res.Truncated, c.Truncated)
			}
		}
	}
}

// With the seed instead of the stored noise, the torch-compatible generator
// reproduces the reference's initial latents.
func TestSeedReproducesReferenceNoise(t *testing.T) {
	c := fixtures.Cases(t)[0]
	m := loadTiny(t, c.Model, false, tensor.Float32)
	res, err := m.Generate(Request{Prompt: c.Prompt, NegativePrompt: c.NegativePrompt, Steps: c.Steps,
		Guidance: c.Guidance, Scheduler: c.Scheduler, Width: 64, Height: 64, Seed: uint64(c.Seed)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := fixtures.Tensors(t, c.Name)
	if e := fixtures.RelL2(res.InitLatents, want("init_latents")); e > 1e-5 {
		t.Fatalf("initial noise: relative L2 error %.3g", e)
	}
	trace := want("latents_trace")
	if e := fixtures.RelL2(res.Latents, trace.Narrow(0, trace.Dim(0)-1, 1)); !(e < 1e-3) {
		t.Fatalf("final latents: relative L2 error %.3g", e)
	}
}

// maxPixelDiff compares two [1, 3, H, W] images in [0, 1] after 8-bit rounding.
func maxPixelDiff(a, b *tensor.Tensor) int {
	x, y := a.Float64s(), b.Float64s()
	worst := 0
	q := func(v float64) int { return int(math.RoundToEven(math.Min(1, math.Max(0, v)) * 255)) }
	for i := range x {
		d := q(x[i]) - q(y[i])
		worst = max(worst, d, -d)
	}
	return worst
}
