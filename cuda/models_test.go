//go:build cuda

package cuda_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
	"github.com/rfnet/rfnet-native/unet"
	"github.com/rfnet/rfnet-native/weights"
)

// load loads a checkpoint for the length of the test. Its tokenizer cuts
// prompts as open_clip does, which make_fixtures.py tokenized the reference
// runs with.
func load(t *testing.T, path string, o pipeline.LoadOptions) *pipeline.Model {
	t.Helper()
	o.TokenizerSplit = clip.SplitOpenCLIP
	m, err := pipeline.Load(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// loadOn loads a tiny model's diffusers folder.
func loadOn(t *testing.T, model string, b tensor.Backend, d tensor.DType) *pipeline.Model {
	t.Helper()
	return load(t, fixtures.Path("models", model), pipeline.LoadOptions{Backend: b, DType: d})
}

// roundedCheckpoint writes model's single-file checkpoint with every tensor
// stored as d and returns its path, so that the CPU reference (computing in
// float32) and the GPU (in d) hold the same weights and differ only by the
// GPU's rounding of intermediates. Weights rounded from f16 to bf16 alone
// move the tiny UNet's output by 2% (tiny-sd2 is stored in f16).
func roundedCheckpoint(t *testing.T, model string, d tensor.DType) string {
	t.Helper()
	f, err := weights.Open(fixtures.Path("models", model+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []weights.Entry
	for _, name := range f.Names() {
		x, err := f.Load(cpu.New(), name, tensor.Float32)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, weights.Entry{Name: name, Tensor: x, DType: d})
	}
	path := filepath.Join(t.TempDir(), model+".safetensors")
	if err := weights.Save(path, entries, f.Metadata()); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadFile loads a single-file checkpoint of a tiny model with the tokenizer
// and configs of its folder.
func loadFile(t *testing.T, path, model string, b tensor.Backend, d tensor.DType) *pipeline.Model {
	t.Helper()
	return load(t, path, pipeline.LoadOptions{Backend: b, DType: d,
		Tokenizer: fixtures.Path("models", model, "tokenizer"), ConfigDir: fixtures.Path("models", model)})
}

// The text encoder, the UNet with every cross-attention probability map,
// and the VAE decoder of each tiny model agree with the CPU, both holding
// the weights as stored in the GPU's dtype.
func TestModelsMatchCPU(t *testing.T) {
	g := device(t)
	for _, model := range []string{"tiny-sd1", "tiny-sd2"} {
		for _, d := range computeDTypes {
			t.Run(model+"/"+d.String(), func(t *testing.T) {
				tol := fixtures.GPUModelTol(d) // as relative L2 of whole outputs
				path := roundedCheckpoint(t, model, d)
				ref := loadFile(t, path, model, cpu.New(), tensor.Float32)
				m := loadFile(t, path, model, g, d)
				check := func(what string, e float64) {
					t.Helper()
					if !(e < tol) {
						t.Errorf("%s: relative L2 difference %.3g (tolerance %.g)", what, e, tol)
					} else {
						t.Logf("%-24s rel. L2 %.2e", what, e)
					}
				}
				condRef, _ := ref.EncodePrompt("a mouse hunting a lion")
				cond, _ := m.EncodePrompt("a mouse hunting a lion")
				check("text encoder", fixtures.RelL2(cond, condRef))

				latent := backendtest.Randn(cpu.New(), tensor.Float32, 7, 1, 4, 8, 8)
				mapsRef, maps := map[string][]float64{}, map[string][]float64{}
				record := func(into map[string][]float64) unet.Hook {
					return func(l unet.Layer, p *tensor.Tensor) bool { into[l.Key] = p.Float64s(); return false }
				}
				outRef, err := ref.UNet.Forward(latent, []float64{601}, condRef, record(mapsRef))
				if err != nil {
					t.Fatal(err)
				}
				out, err := m.UNet.Forward(latent.Move(g).To(d), []float64{601}, cond, record(maps))
				if err != nil {
					t.Fatal(err)
				}
				check("unet", fixtures.RelL2(out, outRef))
				for key, want := range mapsRef {
					check("attention "+key, backendtest.RelL2(maps[key], want))
				}
				check("vae decoder", fixtures.RelL2(m.DecodeImage(latent.Move(g).To(d)), ref.DecodeImage(latent)))
				syncOK(t, g)
			})
		}
	}
}

// The reference runs of diffusers (testdata/parity) on the GPU: in float32
// with the CPU's criteria (latents within 1e-3, images within 2/255); in
// half precision against diffusers' float32 run, with bounds about twice the
// worst figures measured on the CUDA emulator, where every step's rounding
// compounds over the loop (f16: latents 2.3e-2, 10/255; bf16: 0.117, 54/255,
// both on tiny-sd2-v with PNDM; most runs are 5× better). They catch a broken
// half-precision path (NaNs, a wrong conversion: errors of order 1), not drift.
// float32 on TF32 (RFNET_CUDA_TF32=1) likewise gets twice its worst figures
// on the emulator (latents 8.3e-3, 5/255, tiny-sd2 with PNDM).
func TestTextToImageMatchesDiffusers(t *testing.T) {
	g := device(t)
	latentTol := map[tensor.DType]float64{tensor.Float32: 1e-3, tensor.Float16: 5e-2, tensor.BFloat16: 0.25}
	pixelTol := map[tensor.DType]int{tensor.Float32: 2, tensor.Float16: 20, tensor.BFloat16: 100}
	if fixtures.TF32() {
		latentTol[tensor.Float32], pixelTol[tensor.Float32] = 2e-2, 10
	}
	for _, c := range fixtures.Cases(t) {
		want := fixtures.Tensors(t, c.Name)
		for _, d := range computeDTypes {
			t.Run(c.Name+"/"+d.String(), func(t *testing.T) {
				m := loadOn(t, c.Model, g, d)
				res, err := m.Generate(pipeline.Request{Prompt: c.Prompt, NegativePrompt: c.NegativePrompt, Steps: c.Steps,
					Guidance: c.Guidance, Scheduler: c.Scheduler, Width: 64, Height: 64, InitLatents: want("init_latents").To(tensor.Float32)}, nil)
				if err != nil {
					t.Fatal(err)
				}
				trace := want("latents_trace")
				e := fixtures.RelL2(res.Latents, trace.Narrow(0, trace.Dim(0)-1, 1))
				px := maxPixelDiff(res.Image.Float64s(), want("image").Float64s())
				t.Logf("latents rel. L2 %.2e, image max diff %d/255", e, px)
				if !(e < latentTol[d]) || px > pixelTol[d] {
					t.Errorf("latents rel. L2 %.3g (tolerance %.g), image %d/255 (tolerance %d)", e, latentTol[d], px, pixelTol[d])
				}
			})
		}
	}
}

func maxPixelDiff(a, b []float64) int {
	q := func(v float64) int { return int(math.RoundToEven(math.Min(1, math.Max(0, v)) * 255)) }
	worst := 0
	for i := range a {
		d := q(a[i]) - q(b[i])
		worst = max(worst, d, -d)
	}
	return worst
}
