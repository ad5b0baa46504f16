package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// The design's usage, single-dash flags and no command, on the tiny SD 1.x
// folder; then the same noise through --save-latents / --init-latents.
func TestGenerateWritesImageAndSidecar(t *testing.T) {
	dir := t.TempDir()
	out, lat, emb := filepath.Join(dir, "a.png"), filepath.Join(dir, "noise.safetensors"), filepath.Join(dir, "text.safetensors")
	err := run([]string{"-method", "sd", "-weights", fixtures.Path("models", "tiny-sd1"), "-prompt", "a mouse hunting a lion",
		"-negative-prompt", "blurry", "-steps", "4", "-width", "64", "-height", "64", "-seed", "7",
		"-save-latents", lat, "-save-text-embeddings", emb, "-out", out, "-quiet"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil || img.Bounds().Dx() != 64 {
		t.Fatalf("png: %v, %v", err, img)
	}
	if !bytes.Contains(data, []byte("tEXtparameters\x00a mouse hunting a lion\nNegative prompt: blurry\nSteps: 4, Sampler: DDIM, CFG scale: 7.5, Seed: 7, Size: 64x64, Model hash: ")) {
		t.Fatal("the PNG has no parameters text chunk")
	}
	var meta map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, "a.json"))
	if err := json.Unmarshal(raw, &meta); err != nil || meta["prompt"] != "a mouse hunting a lion" || meta["seed"] != 7.0 {
		t.Fatalf("sidecar: %v %v", err, meta)
	}
	for _, f := range []string{lat, emb} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	again := filepath.Join(dir, "b.png")
	err = run([]string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "a mouse hunting a lion",
		"--negative-prompt", "blurry", "--steps", "4", "--width", "64", "--height", "64", "--init-latents", lat, "--out", again, "--quiet"})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := png.Decode(bytes.NewReader(data))
	bdata, _ := os.ReadFile(again)
	b, _ := png.Decode(bytes.NewReader(bdata))
	if !sameImage(a, b) {
		t.Fatal("--init-latents with the saved noise gave a different image")
	}
}

func sameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

func TestGenerateFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "--method", "sd", "--prompt", "x"}, "--weights is required"},
		{[]string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1")}, "--prompt is required"},
		{[]string{"generate", "--weights", fixtures.Path("models", "tiny-sd1")}, "--prompt (or --plan) is required"},
		{[]string{"generate", "--method", "dalle", "--prompt", "x"}, "want rfnet or sd"},
		{[]string{"generate", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "x", "--init-latents", "n.safetensors"}, "applies to --method sd"},
		{[]string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "x", "--dtype", "fp16"}, "fp16 and bf16 need --device cuda"},
		{[]string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "x", "--device", "tpu"}, `--device "tpu"`},
		{[]string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "x", "--scheduler", "heun", "--quiet"}, "choose one of ddim, dpm++2m, euler, pndm"},
		{[]string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "x", "--width", "100", "--quiet"}, "--width 100"},
		{[]string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "x", "--seed", "1", "--init-latents", "n.safetensors"}, "exclude each other"},
	} {
		err := run(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}
