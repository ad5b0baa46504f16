package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// --sdxl refines each image of a batch after its overall run exactly as
// refine does by hand with §11.2's settings (the original caption, the
// plan's negative prompt + the refiner's tail, strength 0.3 of 50 steps,
// guidance 5, aesthetic scores 6 and 2.5, seed bg_seed + 7890), here at
// --sdxl-size 64 for speed; run.json records the pass, index.html shows it
// and --out gets the refined image.
func TestRFNetSDXLMatchesRefine(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	dir := t.TempDir()
	planPath := filepath.Join(dir, "plan-in.json")
	os.WriteFile(planPath, []byte(`{"version": 1, "prompt": "a cat on a mat", "objects": [
  {"name": "a cat", "box": [150, 150, 220, 260], "descriptions": ["sleeping"]}], "background": "a kitchen floor", "negative": "cartoon"}`), 0o644)
	out := filepath.Join(dir, "out")
	err := run([]string{"generate", "--weights", fixtures.Path("models", "tiny-sd2"), "--plan", planPath, "--no-saa",
		"--width", "64", "--height", "64", "--steps", "3", "--seed", "5", "--batch-count", "2", "--out-dir", out, "--quiet",
		"--out", filepath.Join(dir, "final.png"), "--sdxl", "--sdxl-weights", fixtures.Path("models", "tiny-sdxl-refiner"), "--sdxl-size", "64"})
	if err != nil {
		t.Fatal(err)
	}
	seedDir := filepath.Join(out, "seed-6")
	byHand := filepath.Join(dir, "by-hand.png")
	err = run([]string{"refine", "--weights", fixtures.Path("models", "tiny-sdxl-refiner"), "--device", "cpu",
		"--image", filepath.Join(seedDir, "image.png"), "--size", "64", "--prompt", "a cat on a mat",
		"--negative-prompt", "cartoon, " + rfnet.SDXLNegativeTail, "--strength", "0.3", "--steps", "50", "--guidance", "5",
		"--aesthetic-score", "6", "--negative-aesthetic-score", "2.5", "--seed", "7896", "--out", byHand})
	if err != nil {
		t.Fatal(err)
	}
	want := decodePNG(t, byHand)
	for _, p := range []string{filepath.Join(seedDir, rfnet.SDXLImage), filepath.Join(dir, "final-6.png")} {
		got := decodePNG(t, p)
		if got.Bounds() != want.Bounds() {
			t.Fatalf("%s: bounds %v, want %v", p, got.Bounds(), want.Bounds())
		}
		for y := 0; y < 64; y++ {
			for x := 0; x < 64; x++ {
				if got.At(x, y) != want.At(x, y) {
					t.Fatalf("%s: pixel (%d, %d) %v, refine by hand gives %v", p, x, y, got.At(x, y), want.At(x, y))
				}
			}
		}
	}
	var info struct {
		SDXL pipeline.RefineSidecar `json:"sdxl"`
	}
	raw, _ := os.ReadFile(filepath.Join(seedDir, "run.json"))
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	s := info.SDXL
	if s.Seed != 7896 || s.Strength != 0.3 || s.Steps != 50 || s.StepsRun != 15 || s.Prompt != "a cat on a mat" ||
		s.NegativePrompt != "cartoon, "+rfnet.SDXLNegativeTail || s.Weights != fixtures.Path("models", "tiny-sdxl-refiner") ||
		s.Method != rfnet.SDXLMethod || s.Seconds["refine"] <= 0 || !strings.Contains(string(raw), `"sdxl_step_ratio": 0.3`) {
		t.Fatalf("run.json's sdxl: %+v", s)
	}
	text, err := readParameters(filepath.Join(seedDir, rfnet.SDXLImage))
	if err != nil {
		t.Fatal(err)
	}
	p := infotext.Parse(text)
	if seed, _ := p.Fields.Get("Seed"); seed != "7896" || p.Prompt != "a cat on a mat" {
		t.Fatalf("parameters %q", text)
	}
	if m, _ := p.Fields.Get("Method"); m != rfnet.SDXLMethod {
		t.Fatalf("parameters %q", text)
	}
	if _, err := os.Stat(filepath.Join(out, "seed-5", rfnet.SDXLImage)); err != nil {
		t.Fatal(err)
	}
	// index.html, rewritten with the refined image there, shows it and the pass's seconds.
	page, _ := os.ReadFile(filepath.Join(seedDir, "index.html"))
	if !strings.Contains(string(page), `src="`+rfnet.SDXLImage+`"`) || !strings.Contains(string(page), "15 of 50 Euler steps") ||
		!strings.Contains(string(page), "sdxl refine") {
		t.Fatalf("index.html does not show the refined image:\n%s", page)
	}
}

// --sdxl's flags are refused without --sdxl or with --method sd, and a
// model that is no refiner is named as what it is.
func TestRFNetSDXLInput(t *testing.T) {
	dir := t.TempDir()
	planPath := filepath.Join(dir, "plan-in.json")
	os.WriteFile(planPath, []byte(`{"version": 1, "prompt": "a cat", "objects": [{"name": "a cat", "box": [150, 150, 220, 260], "descriptions": ["sleeping"]}], "background": "a floor"}`), 0o644)
	base := []string{"generate", "--weights", fixtures.Path("models", "tiny-sd2"), "--plan", planPath, "--no-saa",
		"--width", "64", "--height", "64", "--steps", "2", "--out-dir", filepath.Join(dir, "out"), "--quiet"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--sdxl-step-ratio", "0.5"}, "--sdxl-step-ratio applies with --sdxl"},
		{[]string{"--sdxl", "--sdxl-step-ratio", "0"}, "--sdxl-step-ratio 0: want (0, 1]"},
		{[]string{"--sdxl", "--sdxl-size", "100"}, "--sdxl-size"},
		{[]string{"--sdxl", "--sdxl-weights", "./no-refiner"}, "--sdxl-weights ./no-refiner: no such file or folder, and not a Hub name"},
		{[]string{"--sdxl", "--sdxl-weights", fixtures.Path("models", "tiny-sd1")}, "--sdxl-weights: pipeline: " + fixtures.Path("models", "tiny-sd1") + " holds a Stable Diffusion 1.x/2.x model"},
		{[]string{"--sdxl-tokenizer", "t"}, "--sdxl-tokenizer applies with --sdxl"},
		// A single-file refiner: the tiny one's shapes do not tell its
		// architecture, and it holds no tokenizer; the flags that give them are named.
		{[]string{"--sdxl", "--sdxl-weights", fixtures.Path("models", "tiny-sdxl-refiner.safetensors")}, "pass --sdxl-config DIR"},
		{[]string{"--sdxl", "--sdxl-weights", fixtures.Path("models", "tiny-sdxl-refiner.safetensors"), "--sdxl-config", fixtures.Path("models", "tiny-sdxl-refiner")}, "--sdxl-tokenizer names it"},
	} {
		if err := run(append(append([]string(nil), base...), c.args...)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one saying %q", c.args, err, c.want)
		}
	}
	// With --sdxl-tokenizer and --sdxl-config the single file refines.
	single := append(append([]string(nil), base...), "--sdxl", "--sdxl-size", "64", "--sdxl-weights", fixtures.Path("models", "tiny-sdxl-refiner.safetensors"),
		"--sdxl-tokenizer", fixtures.Path("models", "tiny-sdxl-refiner", "tokenizer_2"), "--sdxl-config", fixtures.Path("models", "tiny-sdxl-refiner"))
	if err := run(single); err != nil {
		t.Fatalf("a single-file refiner with --sdxl-tokenizer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", rfnet.SDXLImage)); err != nil {
		t.Error(err)
	}
	err := run([]string{"generate", "--weights", fixtures.Path("models", "tiny-sd2"), "--method", "sd", "--prompt", "x", "--sdxl", "--out", filepath.Join(dir, "a.png")})
	if err == nil || !strings.Contains(err.Error(), "--sdxl applies to --method rfnet") {
		t.Errorf("--method sd --sdxl: %v", err)
	}
}

// bench's -sdxl methods need --sdxl-weights, refused before any model loads;
// with it each item's image is the refined one, its sidecar records the pass.
func TestBenchSDXLMethods(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	out := filepath.Join(t.TempDir(), "run")
	args := smallBench(t, out, "--methods", "sd-sdxl,rfnet-sdxl", "--limit", "1")
	noModel := append([]string(nil), args...)
	noModel[2] = filepath.Join(out, "missing-model")
	if err := run_(noModel); err == nil || !strings.Contains(err.Error(), "need --sdxl-weights") {
		t.Fatalf("without --sdxl-weights: %v", err)
	}
	if err := run_(smallBench(t, out, "--sdxl-weights", "x")); err == nil || !strings.Contains(err.Error(), "--sdxl-weights and --sdxl-size apply to the -sdxl methods") {
		t.Fatalf("--sdxl-weights with --methods sd: %v", err)
	}
	if err := run_(append(args, "--sdxl-weights", fixtures.Path("models", "tiny-sdxl-refiner"), "--sdxl-size", "32")); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"sd-sdxl", "rfnet-sdxl"} {
		metas, _ := filepath.Glob(filepath.Join(out, "images", method, "*.json"))
		if len(metas) != 1 {
			t.Fatalf("%s: sidecars %v", method, metas)
		}
		raw, _ := os.ReadFile(metas[0])
		var meta struct {
			Width int                     `json:"width"`
			SDXL  *pipeline.RefineSidecar `json:"sdxl"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil || meta.Width != 32 || meta.SDXL == nil || meta.SDXL.StepsRun != 15 ||
			meta.SDXL.NegativePrompt == "" || !strings.HasSuffix(meta.SDXL.NegativePrompt, ", "+rfnet.SDXLNegativeTail) {
			t.Fatalf("%s: sidecar %s: %v", method, raw, err)
		}
		if b := decodePNG(t, strings.TrimSuffix(metas[0], ".json")+".png").Bounds(); b.Dx() != 32 {
			t.Fatalf("%s: image %v", method, b)
		}
	}
}
