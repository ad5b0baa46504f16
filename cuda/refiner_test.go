//go:build cuda

package cuda_test

import (
	"image"
	_ "image/png" // the input fixture
	"os"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
	"github.com/rfnet/rfnet-native/unet"
)

// The tiny SDXL refiner on the GPU agrees with the CPU's float32 run in each
// compute dtype: the projected text encoder, one UNet call with text_time
// conditioning (batch 2, as guidance runs it), and a whole img2img
// refinement (encoder, posterior sample, 3 Euler steps, decoder). The CPU
// holds the weights unrounded, so in half precision the GPU's error includes
// the weights' rounding, and over the refinement it compounds: the
// refinement is held to twice the dtype's model tolerance there. Measured on
// the CUDA emulator (rel. L2): f32 at most 4.4e-6; f16 UNet 7.7e-3, latents
// 9.8e-3; bf16 UNet 2.5e-2, latents 8.8e-2.
func TestRefinerMatchesCPU(t *testing.T) {
	for _, d := range computeDTypes {
		t.Run(d.String(), func(t *testing.T) { refinerMatchesCPU(t, d) })
	}
}

func refinerMatchesCPU(t *testing.T, d tensor.DType) {
	g := device(t)
	tol := fixtures.GPUModelTol(d)
	load := func(b tensor.Backend, d tensor.DType) *pipeline.Refiner {
		r, err := pipeline.LoadRefiner(fixtures.Path("models", "tiny-sdxl-refiner"), pipeline.LoadOptions{Backend: b, DType: d})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	ref, r := load(cpu.New(), tensor.Float32), load(g, d)
	check := func(what string, e float64) {
		t.Helper()
		tol := tol
		if d != tensor.Float32 && strings.HasPrefix(what, "refined") {
			tol *= 2
		}
		if !(e < tol) {
			t.Errorf("%s: relative L2 difference %.3g (tolerance %.g)", what, e, tol)
		} else {
			t.Logf("%-16s rel. L2 %.2e", what, e)
		}
	}
	ids, _ := ref.Tokenizer.Tokenize("a photo of an astronaut riding a horse on the moon")
	shape := tensor.Shape{1, len(ids)}
	embRef, pooledRef := ref.Text.EncodeSDXL(tensor.FromInt32(ref.Backend, shape, ids))
	emb, pooled := r.Text.EncodeSDXL(tensor.FromInt32(g, shape, ids))
	check("text embeddings", fixtures.RelL2(emb, embRef))
	check("pooled", fixtures.RelL2(pooled, pooledRef))

	latent := backendtest.Randn(cpu.New(), tensor.Float32, 7, 2, 4, 8, 8)
	timeIDs := []float64{64, 64, 0, 0, 2.5, 64, 64, 0, 0, 6}
	call := func(b tensor.Backend, emb, pooled *tensor.Tensor, u *unet.UNet) *tensor.Tensor {
		out, err := u.ForwardAdded(latent.Move(b).To(emb.DType()), []float64{701, 701}, tensor.Concat(0, emb, emb),
			&unet.Added{TextEmbeds: tensor.Concat(0, pooled, pooled), TimeIDs: timeIDs}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	check("unet (batch 2)", fixtures.RelL2(call(g, emb, pooled, r.UNet), call(ref.Backend, embRef, pooledRef, ref.UNet)))

	f, err := os.Open(fixtures.Path("refiner", "refiner-input-64x64.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	refine := func(r *pipeline.Refiner) *pipeline.RefineResult {
		q := pipeline.NewRefineRequest(pipeline.FromImage(r.Backend, r.DType, im), "a lion")
		q.Steps, q.Strength, q.Seed = 10, 0.3, 7890
		res, err := r.Refine(q)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want, got := refine(ref), refine(r)
	check("refined latents", fixtures.RelL2(got.Latents, want.Latents))
	check("refined image", fixtures.RelL2(got.Image, want.Image))
	syncOK(t, g)
}
