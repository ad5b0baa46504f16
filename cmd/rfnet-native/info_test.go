package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
)

// infoJSON is what info --json prints, with the parameters' order kept.
type infoJSON struct {
	Prompt         string `json:"prompt"`
	NegativePrompt string `json:"negative_prompt"`
	Parameters     infotext.Fields
	Text           string `json:"text"`
}

// readInfo runs info --json on path.
func readInfo(t *testing.T, path string) infoJSON {
	t.Helper()
	out := captureStdout(t, func() error { return run([]string{"info", path, "--json"}) })
	var raw struct {
		infoJSON
		Parameters json.RawMessage `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	info := raw.infoJSON
	dec := json.NewDecoder(strings.NewReader(string(raw.Parameters)))
	dec.Token() // {
	for dec.More() {
		k, _ := dec.Token()
		v, _ := dec.Token()
		info.Parameters = append(info.Parameters, infotext.Field{Key: k.(string), Value: v.(string)})
	}
	return info
}

// shortHash is A1111's short hash of a fixture file.
func shortHash(t *testing.T, parts ...string) string {
	t.Helper()
	data, err := os.ReadFile(fixtures.Path(parts...))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:10]
}

// wantInfo checks what info --json read from path: every key of want, and
// nothing else, exactly.
func wantInfo(t *testing.T, path string, want infotext.Params) {
	t.Helper()
	got := readInfo(t, path)
	if got.Prompt != want.Prompt || got.NegativePrompt != want.NegativePrompt || !slices.Equal(got.Parameters, want.Fields()) {
		t.Errorf("%s: info read %q, %q,\n%q\nwant %q, %q,\n%q", path, got.Prompt, got.NegativePrompt, got.Parameters,
			want.Prompt, want.NegativePrompt, want.Fields())
	}
	if got.Text != want.Format() {
		t.Errorf("%s: text %q, want %q", path, got.Text, want.Format())
	}
}

func seedOf(s uint64) *uint64 { return &s }

// A plain SD image with commas, colons, quotes and newlines in its prompts
// reads back whole, in text and as JSON; with --init-latents it names the
// file instead of a seed.
func TestInfoReadsBackGenerate(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	out, noise, again := filepath.Join(dir, "a.png"), filepath.Join(dir, "noise, v1.safetensors"), filepath.Join(dir, "b.png")
	prompt := "a cat, \"Tom\": chased by a mouse\nsecond line: more, commas"
	negative := "blurry, \"bad\": hands"
	args := []string{"--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", prompt, "--negative-prompt", negative,
		"--steps", "2", "--scheduler", "dpm++2m", "--guidance", "6.5", "--width", "64", "--height", "64", "--quiet"}
	if err := run(append(args, "--seed", "42", "--save-latents", noise, "--out", out)); err != nil {
		t.Fatal(err)
	}
	want := infotext.Params{Prompt: prompt, NegativePrompt: negative, Steps: 2, Scheduler: "dpm++2m", CFGScale: 6.5, Seed: seedOf(42),
		Width: 64, Height: 64, Model: infotext.Checkpoint{Name: "tiny-sd1", Hash: shortHash(t, "models", "tiny-sd1", "unet", "diffusion_pytorch_model.safetensors")},
		Method: "sd"}
	wantInfo(t, out, want)
	text := captureStdout(t, func() error { return run([]string{"info", out}) })
	wantText := "Prompt: a cat, \"Tom\": chased by a mouse\n  second line: more, commas\nNegative prompt: blurry, \"bad\": hands\n" +
		"Steps: 2\nSampler: DPM++ 2M\nSchedule type: Uniform\nCFG scale: 6.5\nSeed: 42\nSize: 64x64\nModel hash: " + want.Model.Hash +
		"\nModel: tiny-sd1\nMethod: sd\n"
	if text != wantText {
		t.Errorf("info:\n%s\nwant\n%s", text, wantText)
	}

	if err := run(append(args, "--init-latents", noise, "--out", again)); err != nil {
		t.Fatal(err)
	}
	want.Seed, want.InitLatents = nil, noise
	wantInfo(t, again, want)
}

// RFNet's image.png, its --out copy and an object's image read back with
// RFNet's keys, from what run.json says the run did.
func TestInfoReadsBackRFNet(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	dir := t.TempDir()
	copyOut := filepath.Join(dir, "copy.png")
	if err := run(rfnetArgs(dir, "--llm-base-url", s.BaseURL(), "--llm-api-key", "k", "--llm-cache", "", "--out", copyOut)); err != nil {
		t.Fatal(err)
	}
	var ran struct {
		Prompt          string   `json:"prompt"`
		OverallPrompt   string   `json:"overall_prompt"`
		OverallNegative string   `json:"overall_negative_prompt"`
		SONegative      string   `json:"so_negative_prompt"`
		ObjectPrompts   []string `json:"object_prompts"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "run.json"))
	if err := json.Unmarshal(raw, &ran); err != nil || len(ran.ObjectPrompts) != 2 {
		t.Fatalf("run.json: %v %s", err, raw)
	}
	want := infotext.Params{Prompt: ran.Prompt, NegativePrompt: ran.OverallNegative, Steps: 6, Scheduler: "ddim", CFGScale: 7.5, Seed: seedOf(1),
		Width: 128, Height: 128, Model: infotext.Checkpoint{Name: "tiny-sd2", Hash: shortHash(t, "models", "tiny-sd2", "unet", "diffusion_pytorch_model.safetensors")},
		Method: "rfnet", OverallPrompt: ran.OverallPrompt, Objects: ran.ObjectPrompts, ObjectSeeds: []uint64{20, 21}}
	wantInfo(t, filepath.Join(dir, "image.png"), want)
	wantInfo(t, copyOut, want)
	object := want
	object.Prompt, object.NegativePrompt, object.OverallPrompt, object.Objects, object.ObjectSeeds = ran.ObjectPrompts[1], ran.SONegative, "", nil, []uint64{21}
	wantInfo(t, filepath.Join(dir, "objects", "01-a-mouse.png"), object)
}

// A PNG that A1111 wrote (its keys, a quoted value, an iTXt chunk for text
// beyond Latin-1) prints as A1111 reads it.
func TestInfoA1111Image(t *testing.T) {
	path := filepath.Join(t.TempDir(), "00001-3141592653.png")
	text := "masterpiece, a red fox in the snow 🦊\nNegative prompt: lowres\n" +
		`Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3141592653, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "fox: 1a2b3c4d5e6f, snow: 0f0f0f0f0f0f", Version: v1.10.1`
	writeTestPNG(t, path, map[string]string{"parameters": text})
	got := captureStdout(t, func() error { return run([]string{"info", path}) })
	want := "Prompt: masterpiece, a red fox in the snow 🦊\nNegative prompt: lowres\nSteps: 20\nSampler: DPM++ 2M\nSchedule type: Karras\n" +
		"CFG scale: 7\nSeed: 3141592653\nSize: 512x768\nModel hash: 6ce0161689\nModel: v1-5-pruned-emaonly\n" +
		"Lora hashes: fox: 1a2b3c4d5e6f, snow: 0f0f0f0f0f0f\nVersion: v1.10.1\n"
	if got != want {
		t.Errorf("info:\n%s\nwant\n%s", got, want)
	}
}

// writeTestPNG writes a 2×2 PNG with text chunks.
func writeTestPNG(t *testing.T, path string, text map[string]string) {
	t.Helper()
	if err := pipeline.WritePNG(path, image.NewRGBA(image.Rect(0, 0, 2, 2)), text); err != nil {
		t.Fatal(err)
	}
}

// Bad input is an error that names the file and what is wrong with it.
func TestInfoErrors(t *testing.T) {
	dir := t.TempDir()
	comfy := filepath.Join(dir, "ComfyUI_00001_.png")
	writeTestPNG(t, comfy, map[string]string{"prompt": "{}", "workflow": "{}"})
	bare := filepath.Join(dir, "bare.png")
	writeTestPNG(t, bare, nil)
	data, _ := os.ReadFile(comfy)
	cut := filepath.Join(dir, "cut.png")
	os.WriteFile(cut, data[:len(data)/2], 0o644)
	notPNG := filepath.Join(dir, "photo.jpg")
	os.WriteFile(notPNG, []byte("\xff\xd8\xff\xe0 not a png"), 0o644)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"info"}, []string{"want one image", "IMAGE.png"}},
		{[]string{"info", comfy, bare}, []string{"want one image"}},
		{[]string{"info", comfy}, []string{comfy, `no "parameters" text chunk`, "its text chunks: prompt, workflow"}},
		{[]string{"info", bare}, []string{bare, `no "parameters" text chunk`, "it has no text chunks"}},
		{[]string{"info", cut}, []string{cut, "is cut short"}},
		{[]string{"info", notPNG}, []string{notPNG, "is not a PNG file"}},
		{[]string{"info", filepath.Join(dir, "missing.png")}, []string{"missing.png"}},
	} {
		err := run(c.args)
		if err == nil {
			t.Errorf("%q: no error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", c.args, err, w)
			}
		}
	}
}
