package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

const fakePlan = `{"objects": [{"name": "a mouse", "box": [40, 250, 160, 160], "description": "baring tiny teeth", "alternatives": ["stalking low", "eyes fixed on its prey"]},
{"name": "a lion", "box": [240, 120, 240, 300], "description": "cowering in fear", "alternatives": ["backing away", "trembling"]}],
"background": "the savanna at dusk", "negative": "cartoon"}`

// rfnetArgs are the flags of a short RFNet run on the tiny SD 2.x model.
func rfnetArgs(outDir string, extra ...string) []string {
	return append([]string{"generate", "--weights", fixtures.Path("models", "tiny-sd2"), "--prompt", "a mouse hunting a lion",
		"--width", "128", "--height", "128", "--steps", "6", "--out-dir", outDir, "--quiet"}, extra...)
}

// checkArtifacts asserts that every file of the out-dir is there.
func checkArtifacts(t *testing.T, dir string, objects []string, withSAA bool) {
	t.Helper()
	files := []string{"image.png", "plan.json", "layout.png", "saa.json", "run.json", "trace.jsonl", "geometry.json", "index.html", "regions.png", "composed.png"}
	for j, o := range objects {
		for _, suffix := range []string{".png", "-mask.png", "-attention.png", "-overall-attention.png", "-reference-attention.png"} {
			files = append(files, filepath.Join("objects", strings.Replace(fmtIndex(j)+o, " ", "-", -1)+suffix))
		}
	}
	for _, f := range files {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("missing or empty %s: %v", f, err)
		}
	}
	tr, _ := os.Open(filepath.Join(dir, "trace.jsonl"))
	defer tr.Close()
	stages := map[string]int{}
	sc := bufio.NewScanner(tr)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("trace line %q: %v", sc.Text(), err)
		}
		key := e["stage"].(string)
		if _, ok := e["loss"]; ok {
			key += "/loss"
		}
		stages[key]++
	}
	if stages["object/loss"] == 0 || stages["timing"] < len(objects)+2 {
		t.Errorf("trace: %v", stages)
	}
	var saa []map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, "saa.json"))
	json.Unmarshal(raw, &saa)
	if len(saa) != len(objects) {
		t.Fatalf("saa.json: %s", raw)
	}
	if scores, _ := saa[0]["scores"].([]any); withSAA != (len(scores) == 3) {
		t.Errorf("saa.json (SAA %v): %s", withSAA, raw)
	}
}

func fmtIndex(j int) string { return string(rune('0'+j/10)) + string(rune('0'+j%10)) + "-" }

func TestRFNetWithFakeLLM(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	dir := t.TempDir()
	err := run(rfnetArgs(dir, "--llm-base-url", s.BaseURL(), "--llm-api-key", "k", "--llm-cache", filepath.Join(dir, "cache")))
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by name, as the reference orders objects: "a lion" before "a mouse".
	checkArtifacts(t, dir, []string{"a lion", "a mouse"}, true)
	p, err := llm.ReadPlan(filepath.Join(dir, "plan.json"))
	if err != nil || p.Source.Planner != "openai" || p.Negative != "cartoon" {
		t.Fatalf("plan: %v %+v", err, p)
	}
	var info struct {
		OverallPrompt   string `json:"overall_prompt"`
		OverallNegative string `json:"overall_negative_prompt"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "run.json"))
	json.Unmarshal(raw, &info)
	if !strings.HasPrefix(info.OverallPrompt, "the savanna at dusk with a lion ") || !strings.HasPrefix(info.OverallNegative, "cartoon, artifacts") {
		t.Fatalf("run.json: %s", raw)
	}
	if len(s.Requests()) != 1 {
		t.Fatalf("%d LLM requests", len(s.Requests()))
	}
}

func TestRFNetWithPlanFileAndNoServer(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	dir := t.TempDir()
	plan := `{"version": 1, "prompt": "a cat chased by a mouse", "objects": [
  {"name": "a cat", "box": [250, 150, 220, 260], "descriptions": ["fleeing in panic", "ears flat, running", "glancing back in fear"]},
  {"name": "a mouse", "box": [40, 300, 140, 120], "descriptions": ["chasing fiercely", "tiny but determined", "teeth bared"]},
  {"name": "a mouse", "box": [60, 180, 100, 90], "descriptions": ["leading the chase", "small and fast", "whiskers forward"]}],
  "background": "a kitchen floor", "negative": ""}`
	planPath := filepath.Join(dir, "plan-in.json")
	os.WriteFile(planPath, []byte(plan), 0o644)
	out := filepath.Join(dir, "out")
	if err := run(append(rfnetArgs(out, "--plan", planPath, "--no-saa"), "--out", filepath.Join(dir, "final.png"))); err != nil {
		t.Fatal(err)
	}
	checkArtifacts(t, out, []string{"a cat", "a mouse", "a mouse"}, false)
	if _, err := os.Stat(filepath.Join(dir, "final.png")); err != nil {
		t.Fatal(err)
	}
	var info struct {
		OverallPrompt string `json:"overall_prompt"`
	}
	raw, _ := os.ReadFile(filepath.Join(out, "run.json"))
	json.Unmarshal(raw, &info)
	// Two boxes named "a mouse" are one phrase, "two mice"; without SAA each uses its main description.
	if info.OverallPrompt != "a kitchen floor with a cat fleeing in panic, two mice chasing fiercely" {
		t.Fatalf("overall prompt %q", info.OverallPrompt)
	}
}

func TestPlanCommand(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	out := filepath.Join(t.TempDir(), "plan.json")
	if err := run([]string{"plan", "--prompt", "a mouse hunting a lion", "--llm-base-url", s.BaseURL(), "--llm-cache", "", "--out", out}); err != nil {
		t.Fatal(err)
	}
	p, err := llm.ReadPlan(out)
	if err != nil || len(p.Objects) != 2 || p.Objects[0].Descriptions[1] != "stalking low" {
		t.Fatalf("%v %+v", err, p)
	}
}

// rfnetSettings seeds the objects from --seed as the reference's batch
// script does, turns each ablation flag's part off, and takes the old name of
// --no-reference-constraint too, with a line saying it is deprecated.
func TestRFNetSettingsFlags(t *testing.T) {
	settings := func(args ...string) (rfnet.Config, string) {
		t.Helper()
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		var said bytes.Buffer
		fs.SetOutput(&said)
		g := &generateFlags{}
		g.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		c, err := g.rfnetSettings(fs)
		if err != nil {
			t.Fatal(err)
		}
		return c, said.String()
	}
	if c, _ := settings(); !c.SAA || !c.ReferenceConstraint || !c.Suppression {
		t.Fatalf("no flags: SAA %v, reference %v, suppression %v; want all on", c.SAA, c.ReferenceConstraint, c.Suppression)
	}
	if c, _ := settings("--seed", "7"); c.BgSeed != 7 || c.FgSeedStart != 7+rfnet.FgSeedOffset {
		t.Errorf("--seed 7: seeds %d and %d, want 7 and 7+%d", c.BgSeed, c.FgSeedStart, rfnet.FgSeedOffset)
	}
	for _, f := range []struct {
		flag string
		off  func(rfnet.Config) bool
	}{
		{"--no-saa", func(c rfnet.Config) bool { return !c.SAA && c.ReferenceConstraint && c.Suppression }},
		{"--no-reference-constraint", func(c rfnet.Config) bool { return c.SAA && !c.ReferenceConstraint && c.Suppression }},
		{"--no-guidance-constraint", func(c rfnet.Config) bool { return c.SAA && !c.ReferenceConstraint && c.Suppression }},
		{"--no-suppression-constraint", func(c rfnet.Config) bool { return c.SAA && c.ReferenceConstraint && !c.Suppression }},
	} {
		c, said := settings(f.flag)
		if !f.off(c) {
			t.Errorf("%s: SAA %v, reference %v, suppression %v", f.flag, c.SAA, c.ReferenceConstraint, c.Suppression)
		}
		if deprecated := strings.Contains(said, "deprecated, use --no-reference-constraint"); deprecated != (f.flag == "--no-guidance-constraint") {
			t.Errorf("%s: said %q", f.flag, said)
		}
	}
}

// tokenized is what `rfnet-native tokenize` prints of prompt with the tiny model.
func tokenized(t *testing.T, prompt string) []string {
	t.Helper()
	var out struct {
		Tokens []string `json:"tokens"`
	}
	raw := captureStdout(t, func() error {
		return run([]string{"tokenize", "--weights", fixtures.Path("models", "tiny-sd2"), "--prompt", prompt})
	})
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("tokenize: %v: %s", err, raw)
	}
	return out.Tokens
}

// geometry.json holds what the run used: each phrase's positions and word
// token are where `tokenize` puts its tokens in the prompt the run encoded,
// the overall token map is tokenize's, and the mask's area and center of mass
// (from which the shift comes) are those of the mask the out-dir shows.
// index.html shows every picture in headless Chromium, the preview strip of
// --preview-every included.
func TestRFNetGeometryAndIndex(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	dir := t.TempDir()
	if err := run(rfnetArgs(dir, "--llm-base-url", s.BaseURL(), "--llm-api-key", "k", "--llm-cache", "", "--preview-every", "2")); err != nil {
		t.Fatal(err)
	}
	checkArtifacts(t, dir, []string{"a lion", "a mouse"}, true)
	var g rfnet.Geometry
	raw, _ := os.ReadFile(filepath.Join(dir, "geometry.json"))
	if err := json.Unmarshal(raw, &g); err != nil || len(g.Objects) != 2 {
		t.Fatalf("geometry.json: %v\n%s", err, raw)
	}
	var info rfnet.RunInfo
	raw, _ = os.ReadFile(filepath.Join(dir, "run.json"))
	json.Unmarshal(raw, &info)
	overall := tokenized(t, info.OverallPrompt)
	if n := len(g.OverallTokens); n < 3 || !slices.Equal(g.OverallTokens, overall[:n]) || overall[n-1] != "<|endoftext|>" {
		t.Fatalf("overall tokens %v, tokenize gives %v", g.OverallTokens, overall)
	}
	h, w := g.LatentGrid[0], g.LatentGrid[1]
	for j, o := range g.Objects {
		for _, p := range []struct {
			prompt string
			tokens rfnet.PhraseTokens
		}{{info.ObjectPrompts[j], o.SOPrompt}, {info.OverallPrompt, o.OverallPrompt}} {
			all := tokenized(t, p.prompt)
			phrase := tokenized(t, p.tokens.Phrase)
			phrase = phrase[1:slices.Index(phrase, "<|endoftext|>")]
			var at []string
			for _, i := range p.tokens.Positions {
				at = append(at, all[i])
			}
			if p.tokens.Prompt != p.prompt || !slices.Equal(at, phrase) || !slices.Equal(p.tokens.Tokens, phrase) ||
				all[p.tokens.WordIndex] != p.tokens.WordToken || !slices.Contains(p.tokens.Positions, p.tokens.WordIndex) {
				t.Errorf("%s in %q: %+v; tokenize puts %v there, the phrase is %v", o.Name, p.prompt, p.tokens, at, phrase)
			}
		}
		// The mask image is the latent mask upsampled: read it at cell centers.
		f, err := os.Open(filepath.Join(dir, "objects", fmtIndex(j)+strings.ReplaceAll(o.Name, " ", "-")+"-mask.png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		area, sx, sy := 0, 0.0, 0.0
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				if r, _, _, _ := img.At((2*x+1)*img.Bounds().Dx()/(2*w), (2*y+1)*img.Bounds().Dy()/(2*h)).RGBA(); r > 0 {
					area, sx, sy = area+1, sx+float64(x), sy+float64(y)
				}
			}
		}
		com := [2]float64{sx / float64(area), sy / float64(area)}
		if o.Mask.AreaCells != area || math.Abs(o.Mask.CenterOfMass[0]-com[0]) > 1e-9 || math.Abs(o.Mask.CenterOfMass[1]-com[1]) > 1e-9 {
			t.Errorf("%s: mask %+v, the mask image has %d cells centered at %v", o.Name, o.Mask, area, com)
		}
		b := o.Box.Normalized
		want := [2]float64{(b[0]+b[2])/2*float64(w) - com[0], (b[1]+b[3])/2*float64(h) - com[1]}
		if math.Abs(o.Shift.Unquantized[0]-want[0]) > 1e-9 || math.Abs(o.Shift.Unquantized[1]-want[1]) > 1e-9 {
			t.Errorf("%s: unquantized shift %v, want %v from the mask to the box center", o.Name, o.Shift.Unquantized, want)
		}
	}
	page := filepath.Join(dir, "index.html")
	// image, regions, composed, the preview strip, and five pictures per object
	if n := imagesShown(t, page); n != 0 && n != 4+5*len(g.Objects) {
		t.Errorf("index.html shows %d images", n)
	}
	screenshot(t, page)
}
