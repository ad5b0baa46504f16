package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
	"github.com/rfnet/rfnet-native/weights"
)

const tinyRefiner = "tiny-sdxl-refiner"

// loadTinyRefiner loads testdata/gen/make_refiner.py's refiner from its folder
// or from its single file (with the folder's configs and tokenizer: the tiny
// widths break the released conventions).
func loadTinyRefiner(t *testing.T, single bool) *Refiner {
	t.Helper()
	folder := fixtures.Path("models", tinyRefiner)
	o := LoadOptions{Backend: cpu.New(), DType: tensor.Float64, TokenizerSplit: clip.SplitOpenCLIP}
	path := folder
	if single {
		path = fixtures.Path("models", tinyRefiner+".safetensors")
		o.ConfigDir, o.Tokenizer = folder, filepath.Join(folder, refinerTokenizer)
	}
	r, err := LoadRefiner(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// The single file made by diffusers' name maps loads into the same models as
// the folder: every output is identical, bit for bit, and the folder's matches
// the reference.
func TestRefinerLayoutsMatchExactly(t *testing.T) {
	want := fixtures.Tensors(t, tinyRefiner+"-components")
	type outputs struct {
		ids                               []int32
		embeds, pooled, unet, enc, decode []float64
	}
	run := func(r *Refiner) outputs {
		ids, _ := r.Tokenizer.Tokenize("a photo of an astronaut riding a horse on the moon")
		emb, pooled := r.Text.EncodeSDXL(tensor.FromInt32(r.Backend, tensor.Shape{1, 77}, ids))
		added := &unet.Added{TextEmbeds: want("text_embeds"), TimeIDs: want("time_ids").Float64s()}
		u, err := r.UNet.ForwardAdded(want("sample"), want("timesteps").Float64s(), want("context"), added, nil)
		if err != nil {
			t.Fatal(err)
		}
		return outputs{ids, emb.Float64s(), pooled.Float64s(), u.Float64s(),
			r.Encoder.Encode(want("image")).Float64s(), r.Decoder.Decode(want("sample").Narrow(0, 0, 1)).Float64s()}
	}
	folder, single := loadTinyRefiner(t, false), loadTinyRefiner(t, true)
	if folder.Layout != LayoutDiffusers || single.Layout != LayoutSingleFile {
		t.Fatalf("layouts %s, %s", folder.Layout, single.Layout)
	}
	a, b := run(folder), run(single)
	for _, c := range []struct {
		name string
		a, b []float64
	}{{"embeddings", a.embeds, b.embeds}, {"pooled", a.pooled, b.pooled}, {"unet", a.unet, b.unet},
		{"vae encode", a.enc, b.enc}, {"vae decode", a.decode, b.decode}} {
		if !slices.Equal(c.a, c.b) {
			t.Errorf("%s: the single file's output differs from the folder's", c.name)
		}
	}
	if !slices.Equal(a.ids, b.ids) {
		t.Errorf("token ids %v and %v", a.ids, b.ids)
	}
	got := tensor.FromFloat64(cpu.New(), tensor.Float64, want("unet_out").Shape(), a.unet)
	if e := fixtures.RelL2(got, want("unet_out")); !(e < 1e-4) {
		t.Errorf("unet: relative L2 error %.3g from the reference", e)
	}
	if folder.Variant.VAE.ScalingFactor != 0.13025 || folder.Variant.Sched.TimestepSpacing != "leading" {
		t.Errorf("variant %+v: want the refiner's latent scale and scheduler config", folder.Variant)
	}
}

// A Stable Diffusion or SDXL base checkpoint given as the refiner is refused
// with what it is and what was expected; so is a single file without a tokenizer.
func TestLoadRefinerRefusesOtherModels(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"text_encoder", "text_encoder_2"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, d, "config.json"), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An SDXL base single file: its second text encoder beside the first (names only matter).
	baseFile := filepath.Join(base, "sd_xl_base_1.0.safetensors")
	one := tensor.Zeros(cpu.New(), tensor.Float32, 1)
	if err := weights.Save(baseFile, []weights.Entry{{Name: "conditioner.embedders.0.transformer.text_model.final_layer_norm.bias", Tensor: one, DType: tensor.Float16},
		{Name: "conditioner.embedders.1.model.ln_final.bias", Tensor: one, DType: tensor.Float16}}, nil); err != nil {
		t.Fatal(err)
	}
	o := LoadOptions{Backend: cpu.New(), DType: tensor.Float32}
	for _, c := range []struct {
		path string
		o    LoadOptions
		want string
	}{
		{fixtures.Path("models", "tiny-sd2"), o, "holds a Stable Diffusion 1.x/2.x model (text_encoder/, no text_encoder_2/)"},
		{fixtures.Path("models", "tiny-sd1.safetensors"), o, "is a Stable Diffusion 1.x/2.x checkpoint (cond_stage_model.*)"},
		{base, o, "holds an SDXL base model (text_encoder/ beside text_encoder_2/)"},
		{baseFile, o, "is an SDXL base checkpoint (conditioner.embedders.1.model.* beside embedders.0)"},
		{fixtures.Path("models", tinyRefiner+".safetensors"), LoadOptions{Backend: cpu.New(), ConfigDir: fixtures.Path("models", tinyRefiner)}, "which holds no tokenizer"},
		{filepath.Join(base, "missing"), o, "no such file or directory"},
	} {
		_, err := LoadRefiner(c.path, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: error %v, want one naming it and saying %q", c.path, err, c.want)
		}
	}
}

// SDXLRefiner is the released configs, as diffusers v0.21.4 writes them
// (testdata/models/sdxl-refiner-1.0-configs, from make_refiner_manifest.py),
// read over SD 1.x's so that every refiner value must come from the files.
func TestSDXLRefinerMatchesReleasedConfigs(t *testing.T) {
	sd := SD14()
	got := RefinerVariant{Text: sd.Text, UNet: sd.UNet, VAE: sd.VAE, Sched: sd.Sched}
	if err := got.readConfigs(fixtures.Path("models", "sdxl-refiner-1.0-configs")); err != nil {
		t.Fatal(err)
	}
	want := SDXLRefiner()
	if got.Text != want.Text {
		t.Errorf("text encoder %+v\nwant %+v", got.Text, want.Text)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{{"vae", got.VAE, want.VAE}, {"scheduler", got.Sched, want.Sched}} {
		if raw(c.got) != raw(c.want) {
			t.Errorf("%s %s\nwant %s", c.name, raw(c.got), raw(c.want))
		}
	}
	checkSameUNet(t, got.UNet, want.UNet)
	if got.UNet.SampleSize != want.UNet.SampleSize || got.UNet.MidBlockType != want.UNet.MidBlockType || got.UNet.NormEps != want.UNet.NormEps {
		t.Errorf("unet %s\nwant %s", raw(got.UNet), raw(want.UNet))
	}
}

// An fp16 refiner keeps its autoencoder in fp32 when the VAE config has
// force_upcast (the SDXL VAE's does), and in fp16 when it has not (a fixed VAE).
func TestRefinerUpcastsItsVAE(t *testing.T) {
	folder := fixtures.Path("models", tinyRefiner)
	for _, upcast := range []bool{true, false} {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(folder)); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "vae", "config.json")
		raw, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !upcast {
			raw = []byte(strings.Replace(string(raw), `"force_upcast": true`, `"force_upcast": false`, 1))
		}
		if err := os.WriteFile(cfg, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := LoadRefiner(dir, LoadOptions{Backend: tensor.Meta{}, DType: tensor.Float16, NoTokenizer: true})
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]tensor.DType{true: tensor.Float32, false: tensor.Float16}[upcast]
		if r.Variant.VAE.ForceUpcast != upcast || r.VAEDType != want {
			t.Errorf("force_upcast %v: the VAE is %s, want %s", r.Variant.VAE.ForceUpcast, r.VAEDType, want)
		}
		r.Close()
	}
}
