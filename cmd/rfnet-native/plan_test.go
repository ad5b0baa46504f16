package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/llm"
)

// plan --format writes each layout format, and generate --plan reads each
// back to the boxes of the plan.json.
func TestPlanCommandFormats(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	dir := t.TempDir()
	plans := map[llm.PlanFormat]*llm.Plan{}
	for _, f := range llm.PlanFormats {
		out := filepath.Join(dir, f.DefaultFile())
		if err := run([]string{"plan", "--prompt", "a mouse hunting a lion", "--llm-base-url", s.BaseURL(), "--llm-cache", "", "--format", string(f), "--out", out}); err != nil {
			t.Fatal(err)
		}
		p, err := llm.ReadPlan(out)
		if err != nil {
			t.Fatal(err)
		}
		plans[f] = p
	}
	want := plans[llm.PlanJSON]
	for f, p := range plans {
		if p.Prompt != want.Prompt || p.Background != want.Background || p.Negative != want.Negative || len(p.Objects) != len(want.Objects) {
			t.Fatalf("%s: %+v, want %+v", f, p, want)
		}
		for i, o := range p.Objects {
			if o.Name != want.Objects[i].Name || o.Box != want.Objects[i].Box {
				t.Errorf("%s: %q %v, want %q %v", f, o.Name, o.Box, want.Objects[i].Name, want.Objects[i].Box)
			}
		}
	}
	err := run([]string{"plan", "--prompt", "a cat", "--format", "xml", "--offline-planner"})
	if err == nil || !strings.Contains(err.Error(), `--format: unknown plan format "xml" (want json, lmd, gligen)`) {
		t.Fatalf("--format xml: %v", err)
	}
}

// An LMD layout without a caption takes generate's --prompt, and
// --max-objects caps it like any plan.
func TestRFNetWithLMDLayout(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout.txt")
	os.WriteFile(layout, []byte("[('a mouse', [40, 250, 160, 160]), ('a lion', [240, 120, 240, 300])]\nBackground prompt: the savanna at dusk\nNegative prompt: "), 0o644)
	out := filepath.Join(dir, "out")
	if err := run(rfnetArgs(out, "--plan", layout, "--max-objects", "1", "--steps", "2", "--no-saa")); err != nil {
		t.Fatal(err)
	}
	var used llm.Plan
	raw, _ := os.ReadFile(filepath.Join(out, "plan.json"))
	if err := json.Unmarshal(raw, &used); err != nil || used.Prompt != "a mouse hunting a lion" || used.Background != "the savanna at dusk" ||
		len(used.Objects) != 1 || used.Objects[0].Box != [4]float64{40, 250, 160, 160} || !strings.Contains(strings.Join(used.Notes, "\n"), `dropped "a lion"`) {
		t.Fatalf("plan used: %v %+v", err, used)
	}
}
