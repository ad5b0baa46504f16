package vae

import (
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// mapTiny maps a reference model's autoencoder from its folder or single
// file, with or without the encoder, and reads its config.
func mapTiny(t testing.TB, model string, single, encoder bool) (*weights.Mapping, Config) {
	t.Helper()
	c, err := LoadConfig(fixtures.Path("models", model, "vae", "config.json"), SD())
	if err != nil {
		t.Fatal(err)
	}
	path := fixtures.Path("models", model, "vae", "diffusion_pytorch_model.safetensors")
	if single {
		path = fixtures.Path("models", model+".safetensors")
	}
	f, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if single {
		return MapSingleFile(f, c, encoder), c
	}
	return MapFolder(f, encoder), c
}

// loadTiny returns a reference model's decoder and encoder from its folder or single file.
func loadTiny(t testing.TB, model string, single bool, d tensor.DType) (*Decoder, *Encoder) {
	t.Helper()
	m, c := mapTiny(t, model, single, true)
	src := weights.NewSource("vae", m, cpu.New(), d)
	dec, enc := LoadDecoder(src, c), LoadEncoder(src, c)
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	return dec, enc
}

// Without the encoder, both layouts skip its tensors: the decoder alone uses
// every tensor served, and none is reported unused.
func TestDecoderAloneSkipsTheEncoder(t *testing.T) {
	for _, single := range []bool{false, true} {
		m, c := mapTiny(t, "tiny-sd1", single, false)
		for _, n := range m.Canonical() {
			if strings.HasPrefix(n, "encoder.") || strings.HasPrefix(n, "quant_conv.") {
				t.Fatalf("single=%v: %s is served without the encoder", single, n)
			}
		}
		src := weights.NewSource("vae", m, tensor.Meta{}, tensor.Float32)
		LoadDecoder(src, c)
		if err := src.Err(); err != nil {
			t.Fatalf("single=%v: %v", single, err)
		}
	}
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

// The tiny refiner's autoencoder (testdata/gen/make_refiner.py) has SDXL's
// config keys over SD's architecture: its latent scale and force_upcast come
// from the file, and it encodes and decodes as diffusers does in both layouts.
func TestRefinerVAEMatchesReference(t *testing.T) {
	const model = "tiny-sdxl-refiner"
	want := fixtures.Tensors(t, model+"-components")
	for _, single := range []bool{false, true} {
		dec, enc := loadTiny(t, model, single, tensor.Float64)
		if c := dec.Config; c.ScalingFactor != SDXL().ScalingFactor || !c.ForceUpcast {
			t.Fatalf("config %+v: want scaling_factor %v and force_upcast from the file", c, SDXL().ScalingFactor)
		}
		scale := dec.Config.ScalingFactor
		if e := fixtures.RelL2(dec.Decode(want("sample").Narrow(0, 0, 1).Scale(1/scale)), want("decoded")); !(e < 1e-5) {
			t.Errorf("single=%v: decode: relative L2 error %.3g", single, e)
		}
		if e := fixtures.RelL2(enc.Encode(want("image")).Scale(scale), want("latents")); !(e < 1e-5) {
			t.Errorf("single=%v: encode: relative L2 error %.3g", single, e)
		}
	}
}
