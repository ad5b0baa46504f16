package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fakehub"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// refine writes what diffusers' refiner pipeline makes of the reference run
// "plain" (testdata/refiner, make_refiner_img2img.py), within 1/255 a pixel,
// and the text embeddings it was conditioned on.
func TestRefineCommandMatchesReference(t *testing.T) {
	dir := t.TempDir()
	out, emb := filepath.Join(dir, "refined.png"), filepath.Join(dir, "text.safetensors")
	err := run([]string{"refine", "--weights", fixtures.Path("models", "tiny-sdxl-refiner"), "--device", "cpu",
		"--image", fixtures.Path("refiner", "refiner-input-64x64.png"), "--prompt", "a photo of an astronaut riding a horse on the moon",
		"--steps", "10", "--strength", "0.3", "--seed", "7890", "--tokenizer-split", "open-clip",
		"--save-text-embeddings", emb, "--out", out})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := weights.Open(fixtures.Path("refiner", "refiner-plain.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	img, err := ref.Load(cpu.New(), "image", tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.ToRGBA(img)
	got := decodePNG(t, out)
	if got.Bounds() != want.Bounds() {
		t.Fatalf("bounds %v, want %v", got.Bounds(), want.Bounds())
	}
	for i, v := range want.Pix {
		r, g, b, _ := got.At(i/4%64, i/4/64).RGBA()
		c := [4]uint32{r >> 8, g >> 8, b >> 8, 255}[i%4]
		if d := int(c) - int(v); d > 1 || d < -1 {
			t.Fatalf("pixel %d channel %d: %d, want %d", i/4, i%4, c, v)
		}
	}
	f, err := weights.Open(emb)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if names := strings.Join(f.Names(), " "); names != "cond pooled uncond uncond_pooled" {
		t.Fatalf("--save-text-embeddings wrote %s", names)
	}
}

// --size resizes first; bad input is refused with the flag or file at fault.
func TestRefineCommandInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "refined.png")
	base := []string{"refine", "--weights", fixtures.Path("models", "tiny-sdxl-refiner"), "--device", "cpu", "--prompt", "a lion",
		"--steps", "2", "--strength", "0.5", "--out", out}
	if err := run(append(base, "--image", fixtures.Path("refiner", "refiner-input-64x48.png"), "--size", "32")); err != nil {
		t.Fatal(err)
	}
	if b := decodePNG(t, out).Bounds(); b.Dx() != 32 || b.Dy() != 32 {
		t.Fatalf("--size 32: the output is %v", b)
	}
	notImage := filepath.Join(dir, "notes.txt")
	os.WriteFile(notImage, []byte("not an image"), 0o644)
	odd := fixtures.Path("refiner", "lanczos-64x48-to-30x48.png")
	square := fixtures.Path("refiner", "refiner-input-64x64.png")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--image", notImage}, "--image " + notImage + ": cannot read it as an image"},
		{[]string{"--image", filepath.Join(dir, "missing.png")}, "missing.png"},
		{[]string{"--image", odd}, "is 30x48: its width and height must be multiples of 8 (--size N resizes it"},
		{[]string{"--image", odd, "--size", "12"}, "--size 12: want a multiple of 8"},
		{[]string{}, "--image is required"},
		{[]string{"--image", square, "--weights", fixtures.Path("models", "tiny-sd1")}, "holds a Stable Diffusion 1.x/2.x model"},
		{[]string{"--image", square, "--weights", fixtures.Path("models", "tiny-sdxl-refiner.safetensors"), "--config", fixtures.Path("models", "tiny-sdxl-refiner")},
			"which holds no tokenizer: name one (LoadOptions.Tokenizer), the refiner's tokenizer_2/ folder or OpenAI's bpe_simple_vocab_16e6.txt.gz; --tokenizer names it"},
	} {
		if err := run(append(append([]string(nil), base...), c.args...)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one saying %q", c.args, err, c.want)
		}
	}
}

// refine's PNG carries the A1111-style parameters text of the run, which
// info reads back, and a JSON sidecar with the same record.
func TestRefineWritesParameters(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "refined.png")
	err := run([]string{"refine", "--weights", fixtures.Path("models", "tiny-sdxl-refiner"), "--device", "cpu",
		"--image", fixtures.Path("refiner", "refiner-input-64x48.png"), "--size", "32", "--prompt", "a lion", "--negative-prompt", "blurry",
		"--steps", "4", "--strength", "0.5", "--seed", "11", "--aesthetic-score", "7", "--out", out})
	if err != nil {
		t.Fatal(err)
	}
	text := captureStdout(t, func() error { return run([]string{"info", "--json", out}) })
	var printed struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal([]byte(text), &printed); err != nil {
		t.Fatalf("info --json printed %q: %v", text, err)
	}
	got := infotext.Parse(printed.Text)
	if got.Prompt != "a lion" || got.NegativePrompt != "blurry" {
		t.Fatalf("prompt %q, negative prompt %q", got.Prompt, got.NegativePrompt)
	}
	var keys []string
	fields := map[string]string{}
	for _, f := range got.Fields {
		keys = append(keys, f.Key)
		fields[f.Key] = f.Value
	}
	if want := "Steps Sampler CFG scale Seed Size Model hash Model Denoising strength Aesthetic score Negative aesthetic score Method"; strings.Join(keys, " ") != want {
		t.Fatalf("keys %q, want %q", strings.Join(keys, " "), want)
	}
	for k, v := range map[string]string{"Steps": "4", "Sampler": "Euler", "CFG scale": "5", "Seed": "11", "Size": "32x32",
		"Model": "tiny-sdxl-refiner", "Denoising strength": "0.5", "Aesthetic score": "7", "Negative aesthetic score": "2.5", "Method": "sdxl-refiner"} {
		if fields[k] != v {
			t.Errorf("%s: %q, want %q", k, fields[k], v)
		}
	}
	if len(fields["Model hash"]) != 10 {
		t.Errorf("Model hash %q", fields["Model hash"])
	}
	raw, err := os.ReadFile(pipeline.SidecarPath(out))
	if err != nil {
		t.Fatal(err)
	}
	var meta pipeline.RefineSidecar
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.StepsRun != 2 || meta.Resized != 32 || meta.Input != fixtures.Path("refiner", "refiner-input-64x48.png") || meta.Seconds["refine"] <= 0 {
		t.Fatalf("sidecar %s", raw)
	}
}

// refinerHub serves the tiny refiner folder as the sdxl-refiner alias's
// repository, with fp16 twins of its weights, and points the Hub client's
// environment at it and at a fresh cache.
func refinerHub(t *testing.T) (home string) {
	t.Helper()
	files := modelFiles("tiny-sdxl-refiner")
	for name, data := range files {
		if base, ok := strings.CutSuffix(name, ".safetensors"); ok {
			files[base+".fp16.safetensors"] = data
		}
	}
	s := fakehub.New(map[string]*fakehub.Repo{"stabilityai/stable-diffusion-xl-refiner-1.0": {Commit: strings.Repeat("d", 40), Files: files}})
	t.Cleanup(s.Close)
	home = t.TempDir()
	t.Setenv("HF_ENDPOINT", s.URL)
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_HUB_ETAG_TIMEOUT", "")
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "")
	return home
}

// download sdxl-refiner fetches the refiner's folder (the fp16 weights with
// --fp16), and refine --weights sdxl-refiner runs from the cache.
func TestRefinerFromHub(t *testing.T) {
	refinerHub(t)
	out := captureStdout(t, func() error { return run([]string{"download", "--fp16", "sdxl-refiner"}) })
	for _, want := range []string{filepath.Join("models--stabilityai--stable-diffusion-xl-refiner-1.0", "snapshots", strings.Repeat("d", 40)),
		"tokenizer_2/vocab.json", "text_encoder_2/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors"} {
		if !strings.Contains(out, want) {
			t.Fatalf("download printed %q, want %s in it", out, want)
		}
	}
	dir := t.TempDir()
	png := filepath.Join(dir, "refined.png")
	t.Setenv("HF_HUB_OFFLINE", "1")
	if err := run([]string{"refine", "--weights", "sdxl-refiner", "--device", "cpu", "--image", fixtures.Path("refiner", "refiner-input-64x64.png"),
		"--prompt", "a lion", "--steps", "2", "--strength", "0.5", "--out", png}); err != nil {
		t.Fatal(err)
	}
	var meta pipeline.RefineSidecar
	raw, _ := os.ReadFile(pipeline.SidecarPath(png))
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Weights != "sdxl-refiner" || !strings.Contains(meta.Model, "models--stabilityai--stable-diffusion-xl-refiner-1.0") {
		t.Fatalf("sidecar %s: %v", raw, err)
	}
	text, err := readParameters(png)
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := infotext.Parse(text).Fields.Get("Model"); name != "stable-diffusion-xl-refiner-1.0" {
		t.Fatalf("Model %q in %q", name, text)
	}
}
