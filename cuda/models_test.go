//go:build cuda

package cuda_test

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
	"github.com/rfnet/rfnet-native/unet"
)

func loadOn(t *testing.T, model string, b tensor.Backend, d tensor.DType) *pipeline.Model {
	t.Helper()
	m, err := pipeline.Load(fixtures.Path("models", model), pipeline.LoadOptions{Backend: b, DType: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// The text encoder, the UNet with every cross-attention probability map,
// and the VAE decoder of each tiny model agree with the CPU.
func TestModelsMatchCPU(t *testing.T) {
	g := device(t)
	for _, model := range []string{"tiny-sd1", "tiny-sd2"} {
		ref := loadOn(t, model, cpu.New(), tensor.Float32)
		for _, d := range computeDTypes {
			t.Run(model+"/"+d.String(), func(t *testing.T) {
				tol := tol(d) // as relative L2 of whole outputs
				m := loadOn(t, model, g, d)
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
// half precision the figures are logged against looser bounds.
func TestTextToImageMatchesDiffusers(t *testing.T) {
	g := device(t)
	latentTol := map[tensor.DType]float64{tensor.Float32: 1e-3, tensor.Float16: 3e-2, tensor.BFloat16: 1e-1}
	pixelTol := map[tensor.DType]int{tensor.Float32: 2, tensor.Float16: 8, tensor.BFloat16: 24}
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
