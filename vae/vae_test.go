package vae

import (
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// loadTiny returns a reference model's autoencoder source from its folder or single file.
func loadTiny(t testing.TB, model string, single bool, d tensor.DType) (*Decoder, *Encoder) {
	t.Helper()
	c, err := LoadConfig(fixtures.Path("models", model, "vae", "config.json"), SD())
	if err != nil {
		t.Fatal(err)
	}
	var m *weights.Mapping
	if single {
		f, err := weights.Open(fixtures.Path("models", model+".safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		m = MapSingleFile(f, c)
	} else {
		f, err := weights.Open(fixtures.Path("models", model, "vae", "diffusion_pytorch_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		m = MapFolder(f)
	}
	src := weights.NewSource("vae", m, cpu.New(), d)
	dec, enc := LoadDecoder(src, c), LoadEncoder(src, c)
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	return dec, enc
}

func TestVAEMatchesReference(t *testing.T) {
	// tiny-sd1's folder uses the pre-0.14 attention names (query, key, value, proj_attn).
	for _, model := range []string{"tiny-sd1", "tiny-sd2"} {
		want := fixtures.Tensors(t, model+"-components")
		for _, single := range []bool{false, true} {
			for _, d := range []tensor.DType{tensor.Float32, tensor.Float64} {
				dec, enc := loadTiny(t, model, single, d)
				scale := dec.Config.ScalingFactor
				got := dec.Decode(want("sample").Narrow(0, 0, 1).Scale(1 / scale).To(d))
				if e := fixtures.RelL2(got, want("decoded")); !(e < 1e-5) {
					t.Errorf("%s single=%v %s: decode: relative L2 error %.3g", model, single, d, e)
				}
				lat := enc.Encode(want("image").To(d)).Scale(scale)
				if e := fixtures.RelL2(lat, want("latents")); !(e < 1e-5) {
					t.Errorf("%s single=%v %s: encode: relative L2 error %.3g", model, single, d, e)
				}
			}
		}
	}
}
