package pipeline

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/internal/randckpt"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// writeDiffusersFolder lays out a diffusers folder with the manifest's files
// (sparse: names and shapes only) and the variant's configs.
func writeDiffusersFolder(t *testing.T, manifest string, v Variant) string {
	t.Helper()
	files, err := randckpt.ReadDiffusers(manifest)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), manifest)
	for name, m := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := randckpt.WriteSparse(p, m); err != nil {
			t.Fatal(err)
		}
	}
	for comp, cfg := range map[string]any{"unet/config.json": v.UNet, "vae/config.json": v.VAE,
		"text_encoder/config.json": v.Text, "scheduler/scheduler_config.json": v.Sched} {
		raw, _ := json.Marshal(cfg)
		os.WriteFile(filepath.Join(dir, comp), raw, 0o644)
	}
	return dir
}

// Every tensor of the released SD 1.5 and 2.1 layouts (both of them) is found,
// has the expected shape and is used, with the configs detected or shipped;
// the VAE's encoder is skipped unless asked for, and the parameter counts are
// those of what was loaded.
func TestReleasedLayoutsBuild(t *testing.T) {
	for _, c := range []struct {
		manifest string
		variant  Variant
		params   int64 // UNet parameters
	}{
		{"sd15", SD15(), 859520964},
		{"sd21", SD21Base(), 865910724},
	} {
		for _, encoder := range []bool{false, true} {
			meta := LoadOptions{Backend: tensor.Meta{}, DType: tensor.Float32, VAEEncoder: encoder}
			suffix := map[bool]string{false: "", true: "/with-encoder"}[encoder]
			t.Run(c.manifest+"/single-file"+suffix, func(t *testing.T) {
				m, err := randckpt.ReadSingleFile(c.manifest + "-single-file")
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(t.TempDir(), c.manifest+".safetensors")
				if err := randckpt.WriteSparse(p, m); err != nil {
					t.Fatal(err)
				}
				model, err := Inspect(p, meta)
				if err != nil {
					t.Fatal(err)
				}
				defer model.Close()
				checkDetected(t, model, c.variant, c.params, encoder)
			})
			t.Run(c.manifest+"/diffusers"+suffix, func(t *testing.T) {
				model, err := Inspect(writeDiffusersFolder(t, c.manifest+"-diffusers", c.variant), meta)
				if err != nil {
					t.Fatal(err)
				}
				defer model.Close()
				checkDetected(t, model, c.variant, c.params, encoder)
			})
		}
	}
}

// The parameters of SD's autoencoder: post_quant_conv and the decoder,
// quant_conv and the encoder.
const sdVAEDecoderParams, sdVAEEncoderParams = 49490199, 34163664

// checkDetected checks m's variant against want and its parameter counts
// against what was loaded: unetParams, and the VAE's decoder (with encoder,
// its encoder too).
func checkDetected(t *testing.T, m *Model, want Variant, unetParams int64, encoder bool) {
	t.Helper()
	got := m.Variant
	raw := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	if got.Family != want.Family || raw(got.UNet) != raw(want.UNet) || raw(got.VAE) != raw(want.VAE) || raw(got.Text) != raw(want.Text) {
		t.Fatalf("detected %s\n unet %s\n vae  %s\n text %s\nwant %s\n unet %s\n vae  %s\n text %s",
			got.Name, raw(got.UNet), raw(got.VAE), raw(got.Text), want.Name, raw(want.UNet), raw(want.VAE), raw(want.Text))
	}
	if m.Components[1].Parameters != unetParams {
		t.Fatalf("unet parameters %d, want %d", m.Components[1].Parameters, unetParams)
	}
	vaeParams := int64(sdVAEDecoderParams)
	if encoder {
		vaeParams += sdVAEEncoderParams
	}
	if c := m.Components[2]; c.Name != "vae" || c.Parameters != vaeParams || (m.Encoder != nil) != encoder {
		t.Fatalf("%s parameters %d, want %d; encoder built: %v, want %v", c.Name, c.Parameters, vaeParams, m.Encoder != nil, encoder)
	}
}

// A random full-size fp16 checkpoint in the original single-file layout loads
// and runs: the text encoder and one UNet call on a small latent.
func TestFullSizeRandomCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and loads two full-size checkpoints (about 5 GB); skipped with -short")
	}
	for _, name := range []string{"sd15", "sd21"} {
		t.Run(name, func(t *testing.T) {
			m, err := randckpt.ReadSingleFile(name + "-single-file")
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), name+".safetensors")
			if err := randckpt.Write(p, m, 1); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(p)
			model, err := Load(p, LoadOptions{Backend: cpu.New(), DType: tensor.Float32, Tokenizer: fixtures.Path("tokenizer", "tiny")})
			if err != nil {
				t.Fatal(err)
			}
			defer model.Close()
			cond, _ := model.EncodePrompt("a mouse hunting a lion")
			latent := backendtest.Randn(model.Backend, tensor.Float32, 2, 1, 4, 8, 8)
			out, err := model.UNet.Forward(latent, []float64{500}, cond, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !out.Shape().Equal(tensor.Shape{1, 4, 8, 8}) {
				t.Fatalf("unet output %v", out.Shape())
			}
			for _, x := range []*tensor.Tensor{cond, out} {
				for _, v := range x.Float32s() {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("non-finite output %v", x)
					}
				}
			}
		})
	}
}
