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
	"github.com/rfnet/rfnet-native/unet"
)

// The refiner's manifests (testdata/gen/make_refiner_manifest.py: the released
// configs built by diffusers v0.21.4 on the meta device).
const refinerManifest = "sdxl-refiner"

// writeRefinerSingleFile writes the refiner's single file, sparse (names and
// shapes only) or with random fp16 weights.
func writeRefinerSingleFile(t *testing.T, sparse bool) string {
	t.Helper()
	m, err := randckpt.ReadSingleFile(refinerManifest + "-single-file")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "sd_xl_refiner_1.0.safetensors")
	if sparse {
		err = randckpt.WriteSparse(p, m)
	} else {
		err = randckpt.Write(p, m, 1)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every tensor of the refiner's released layouts is found, has the expected
// shape and is used: the folder with the released configs (as SDXLRefiner
// has them), the single file with the configs its names and shapes give,
// which must describe the same architecture.
func TestRefinerReleasedLayoutsBuild(t *testing.T) {
	want := SDXLRefiner()
	meta := LoadOptions{Backend: tensor.Meta{}, DType: tensor.Float32, NoTokenizer: true}
	t.Run("single-file", func(t *testing.T) {
		r, err := LoadRefiner(writeRefinerSingleFile(t, true), meta)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := r.Variant
		if got.Text != want.Text {
			t.Errorf("text encoder: inferred %+v, want %+v", got.Text, want.Text)
		}
		if g, w := raw(got.VAE), raw(want.VAE); g != w {
			t.Errorf("vae: inferred %s, want %s", g, w)
		}
		checkSameUNet(t, got.UNet, want.UNet)
	})
	t.Run("diffusers", func(t *testing.T) {
		files, err := randckpt.ReadDiffusers(refinerManifest + "-diffusers")
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "stable-diffusion-xl-refiner-1.0")
		for name, m := range files {
			p := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := randckpt.WriteSparse(p, m); err != nil {
				t.Fatal(err)
			}
		}
		for comp, cfg := range map[string]any{"unet/config.json": want.UNet, "vae/config.json": want.VAE,
			refinerText + "/config.json": want.Text, "scheduler/scheduler_config.json": want.Sched} {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, comp)), 0o755)
			if err := os.WriteFile(filepath.Join(dir, comp), []byte(raw(cfg)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r, err := LoadRefiner(dir, meta)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if raw(r.Variant) != raw(want) {
			t.Errorf("variant %s\nwant %s", raw(r.Variant), raw(want))
		}
	})
}

func raw(v any) string { b, _ := json.Marshal(v); return string(b) }

// checkSameUNet compares what decides a UNet's architecture, block by block
// (an inferred config spells some of it differently: one depth per block
// where the released config has one for all, 1 where no attention uses it).
func checkSameUNet(t *testing.T, got, want unet.Config) {
	t.Helper()
	if raw(got.BlockOutChannels) != raw(want.BlockOutChannels) || raw(got.DownBlockTypes) != raw(want.DownBlockTypes) ||
		raw(got.UpBlockTypes) != raw(want.UpBlockTypes) || got.LayersPerBlock != want.LayersPerBlock ||
		got.CrossAttentionDim != want.CrossAttentionDim || got.UseLinearProjection != want.UseLinearProjection ||
		got.AdditionEmbedType != want.AdditionEmbedType || got.AdditionTimeEmbedDim != want.AdditionTimeEmbedDim ||
		got.ProjectionClassEmbeddingsInputDim != want.ProjectionClassEmbeddingsInputDim || got.InChannels != want.InChannels ||
		got.OutChannels != want.OutChannels || got.NormNumGroups != want.NormNumGroups {
		t.Fatalf("unet: inferred %s\nwant %s", raw(got), raw(want))
	}
	n := len(want.BlockOutChannels)
	for i := range n {
		// The depth of a level without attention is unused, but for the last level's (the middle block's).
		attention := want.DownBlockTypes[i] == "CrossAttnDownBlock2D" || want.UpBlockTypes[n-1-i] == "CrossAttnUpBlock2D" || i == n-1
		if got.HeadsOf(i) != want.HeadsOf(i) || attention && got.TransformerLayersOf(i) != want.TransformerLayersOf(i) {
			t.Fatalf("unet block %d: %d heads, %d transformer layers; want %d, %d", i,
				got.HeadsOf(i), got.TransformerLayersOf(i), want.HeadsOf(i), want.TransformerLayersOf(i))
		}
	}
}

// A random full-size fp16 refiner in the single-file layout (about 6 GB)
// loads with its configs inferred and runs: the text encoder and one UNet
// call on a small latent, with the refiner's time ids. The CPU computes in
// fp32, so the loaded model takes about 12 GB of memory.
func TestFullSizeRandomRefiner(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and loads a full-size SDXL refiner (6 GB on disk, 12 GB in memory); skipped with -short")
	}
	b := cpu.New()
	if avail, err := b.AvailableMemory(); err == nil && avail < 16<<30 {
		// Rather than an out-of-memory kill of the whole test run.
		t.Skipf("needs about 16 GB of free memory (the refiner's 3 billion parameters in fp32), %.1f GB available", float64(avail)/(1<<30))
	}
	p := writeRefinerSingleFile(t, false)
	defer os.Remove(p)
	r, err := LoadRefiner(p, LoadOptions{Backend: b, DType: tensor.Float32, Tokenizer: fixtures.Path("tokenizer", "tiny")})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ids, _ := r.Tokenizer.Tokenize("a mouse hunting a lion")
	cond, pooled := r.Text.EncodeSDXL(tensor.FromInt32(r.Backend, tensor.Shape{1, 77}, ids))
	latent := backendtest.Randn(r.Backend, tensor.Float32, 2, 1, 4, 8, 8)
	added := &unet.Added{TextEmbeds: pooled, TimeIDs: []float64{1024, 1024, 0, 0, 6}}
	out, err := r.UNet.ForwardAdded(latent, []float64{500}, cond, added, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Shape().Equal(tensor.Shape{1, 4, 8, 8}) || !cond.Shape().Equal(tensor.Shape{1, 77, 1280}) || !pooled.Shape().Equal(tensor.Shape{1, 1280}) {
		t.Fatalf("unet output %v, embeddings %v, pooled %v", out.Shape(), cond.Shape(), pooled.Shape())
	}
	for _, x := range []*tensor.Tensor{cond, pooled, out} {
		for _, v := range x.Float32s() {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("non-finite output %v", x)
			}
		}
	}
}
