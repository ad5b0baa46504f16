package llm

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// writePlanFile writes text to a file named name in a new temporary folder.
func writePlanFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	writeFile(t, path, []byte(text))
	return path
}

// sameLayout fails unless got has want's prompt, background, negative prompt
// and object names, and boxes within tol pixels of want's.
func sameLayout(t *testing.T, what string, got, want *Plan, tol float64) {
	t.Helper()
	if got.Prompt != want.Prompt || got.Background != want.Background || got.Negative != want.Negative || len(got.Objects) != len(want.Objects) {
		t.Fatalf("%s: %+v, want %+v", what, got, want)
	}
	for i, o := range got.Objects {
		w := want.Objects[i]
		if o.Name != w.Name {
			t.Errorf("%s: object %d is %q, want %q", what, i, o.Name, w.Name)
		}
		for j := range o.Box {
			if math.Abs(o.Box[j]-w.Box[j]) > tol {
				t.Errorf("%s: %q box %v, want %v (±%g px)", what, o.Name, o.Box, w.Box, tol)
				break
			}
		}
	}
}

// The layout of diffusers' GLIGEN and LMD examples, as each format writes it.
const (
	waterfallPlanJSON = `{"version": 1, "prompt": "a waterfall and a modern house in a forest", "objects": [
  {"name": "a waterfall", "box": [71, 105, 148, 258], "descriptions": ["in autumn"]},
  {"name": "a modern house", "box": [264, 173, 222, 264], "descriptions": ["glass walls"]}],
  "background": "a forest in autumn", "negative": "people"}`
	waterfallLMD = `Caption: a waterfall and a modern house in a forest
Objects: [('a waterfall', [71, 105, 148, 258]), ('a modern house', [264, 173, 222, 264])]
Background prompt: a forest in autumn
Negative prompt: people
`
	// LMD's cache keeps the layout without the caption and the "Objects:" label.
	waterfallLMDCache = "[('a waterfall', [71, 105, 148, 258]), ('a modern house', [264, 173, 222, 264])]\nBackground prompt: a forest in autumn\nNegative prompt: people"
	// The boxes are the pixels over 512, exactly.
	waterfallGLIGEN = `{"prompt": "a waterfall and a modern house in a forest",
  "phrases": ["a waterfall", "a modern house"],
  "boxes": [[0.138671875, 0.205078125, 0.427734375, 0.708984375], [0.515625, 0.337890625, 0.94921875, 0.853515625]],
  "background": "a forest in autumn", "negative": "people"}`
	// diffusers' GLIGEN example gives the same boxes to four decimals, without our keys.
	waterfallGLIGEN4 = `{"prompt": "a waterfall and a modern house in a forest", "phrases": ["a waterfall", "a modern house"],
  "boxes": [[0.1387, 0.2051, 0.4277, 0.7090], [0.5156, 0.3379, 0.9492, 0.8535]]}`
)

func TestLayoutFilesGiveThePlanJSONBoxes(t *testing.T) {
	want, err := ReadPlan(writePlanFile(t, "plan.json", waterfallPlanJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, text string
		tol        float64
	}{
		{"layout.txt", waterfallLMD, 0},
		{"cache-entry", waterfallLMDCache, 0},
		{"layout.json", waterfallGLIGEN, 0},
		{"diffusers.json", waterfallGLIGEN4, 0.06}, // four decimals are 512·0.00005 px per corner
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadPlan(writePlanFile(t, c.name, c.text))
			if err != nil {
				t.Fatal(err)
			}
			w := *want
			if c.name == "cache-entry" {
				w.Prompt = ""
			}
			if c.name == "diffusers.json" {
				w.Background, w.Negative = "", ""
			}
			sameLayout(t, c.name, got, &w, c.tol)
			for _, o := range got.Objects {
				if len(o.Descriptions) != 1 || o.Descriptions[0] != "" {
					t.Errorf("%q: descriptions %q, want the name alone", o.Name, o.Descriptions)
				}
			}
			if !strings.Contains(strings.Join(got.Notes, "\n"), "has no descriptions") {
				t.Errorf("notes %q", got.Notes)
			}
		})
	}
}

func TestPlanRoundTripsThroughLayouts(t *testing.T) {
	// Offline boxes are thirds of the canvas: LMD rounds them to whole pixels.
	offline, err := Offline{}.Plan(context.Background(), "a cat chased by a mouse and the cat's toy")
	if err != nil {
		t.Fatal(err)
	}
	whole := &Plan{Version: PlanVersion, Prompt: `a "quoted" caption`, Background: "a kitchen floor", Negative: "blurry", Objects: []Object{
		{Name: `the cat's "toy"`, Box: [4]float64{0, 0, 511, 512}, Descriptions: []string{"red"}},
		{Name: `a back\slash`, Box: [4]float64{250, 150, 220, 260}, Descriptions: []string{"x"}},
		{Name: "the cat's bowl", Box: [4]float64{40, 300, 140, 120}, Descriptions: []string{"y"}},
	}}
	for _, p := range []*Plan{offline, whole} {
		for _, f := range []PlanFormat{PlanJSON, LMDLayout, GLIGENLayout} {
			path := filepath.Join(t.TempDir(), f.DefaultFile())
			if err := p.WriteAs(path, f); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPlan(path)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			what := string(f) + ": " + p.Prompt
			switch f {
			case PlanJSON:
				sameLayout(t, what, got, p, 0)
			case LMDLayout:
				sameLayout(t, what, got, p, 0.5)
				for i, o := range got.Objects {
					if o.Box != pixelBox(p.Objects[i].Box) {
						t.Errorf("%s: %q box %v, want %v rounded half to even", what, o.Name, o.Box, p.Objects[i].Box)
					}
				}
				// Read back and written again, the text does not change.
				first, _ := p.MarshalAs(f)
				if again, _ := got.MarshalAs(f); string(again) != string(first) {
					t.Errorf("%s: written again\n%s\nwas\n%s", what, again, first)
				}
			case GLIGENLayout:
				tol := 1e-9 // x + w of a fraction of a pixel rounds in floating point
				if p == whole {
					tol = 0
				}
				sameLayout(t, what, got, p, tol)
			}
		}
	}
}

// An LMD layout goes through the LLM plan's box filter: a box leaving the
// canvas rescales them all, boxes without area or covering the canvas go.
func TestLMDLayoutFilteredLikeAnswers(t *testing.T) {
	p, err := ReadPlan(writePlanFile(t, "layout.txt", "[('a cat', [-20, 100, 200, 200]), ('a dog', [300, 100, 200, 200]), "+
		"('the sky', [0, 0, 512, 512]), ('a flea', [10, 10, 0, 5]), ('a ghost', None)]\nBackground prompt: a yard\nNegative prompt: None"))
	if err != nil {
		t.Fatal(err)
	}
	// scale = 512/520 (the union is 520 wide), shift 20: 200 px become 197, 100 become 98.
	want := &Plan{Background: "a yard", Objects: []Object{{Name: "a cat", Box: [4]float64{0, 98, 197, 197}}, {Name: "a dog", Box: [4]float64{315, 98, 197, 197}}}}
	sameLayout(t, "filtered", p, want, 0)
	notes := strings.Join(p.Notes, "\n")
	for _, n := range []string{`of "a cat" leaves the canvas: all boxes were rescaled`, `dropped "the sky"`, `dropped "a flea"`, `dropped "a ghost"`} {
		if !strings.Contains(notes, n) {
			t.Errorf("notes %q lack %q", notes, n)
		}
	}
	p.Cap(1)
	if len(p.Objects) != 1 || !strings.Contains(p.Notes[len(p.Notes)-1], `dropped "a dog"`) {
		t.Fatalf("capped: %+v", p)
	}
}

func TestPlanFileErrorsNameTheFileAndObject(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"lmd-box.txt", "[('a cat', [1, 2, 3])]", `object 0 ("a cat"): box "[1 2 3]" is not [x, y, w, h]`},
		{"lmd-syntax.txt", "Objects: [('a cat', [1, 2, 3, 4]", "the object list does not parse"},
		{"lmd-no-name.txt", "[('', [10, 10, 100, 100])]", "object 0 has no name"},
		{"lmd-twice.txt", "[]\nBackground prompt: a\nBackground prompt: b", `"Background prompt:" appears 2 times`},
		{"lmd-order.txt", "Background prompt: a\nObjects: [('a cat', [1, 2, 3, 4])]", `"Background prompt:" comes before "Objects:"`},
		{"lmd-caption.txt", "Caption: a cat\n[('a cat', [1, 2, 3, 4])]", `"Caption:" without "Objects:"`},
		{"gligen-count.json", `{"phrases": ["a cat", "a dog"], "boxes": [[0, 0, 0.5, 0.5]]}`, "2 phrases and 1 boxes"},
		{"gligen-pixels.json", `{"phrases": ["a house"], "boxes": [[71, 105, 219, 363]]}`, `object 0 ("a house"): box [71 105 219 363] leaves [0, 1]`},
		{"gligen-area.json", `{"phrases": ["a cat", "a dog"], "boxes": [[0, 0, 0.5, 0.5], [0.6, 0.1, 0.2, 0.5]]}`, `object 1 ("a dog"): box [0.6 0.1 0.2 0.5] has no area`},
		{"gligen-values.json", `{"phrases": ["a cat"], "boxes": [["left", 0, 1, 1]]}`, `object 0 ("a cat"): box "[\"left\", 0, 1, 1]" is not [x0, y0, x1, y1]`},
		{"gligen-no-name.json", `{"phrases": [""], "boxes": [[0, 0, 0.5, 0.5]]}`, "object 0 has no name"},
		{"other.json", `{"caption": "a cat"}`, `not a plan: want a plan.json`},
		{"prose.txt", "a cat and a dog", `or LMD layout text`},
		{"empty.txt", "", `not a plan`},
	} {
		path := writePlanFile(t, c.name, c.text)
		_, err := ReadPlan(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want the path and %q", c.name, err, c.want)
		}
	}
}

func TestParsePlanFormat(t *testing.T) {
	for _, f := range PlanFormats {
		if got, err := ParsePlanFormat(string(f)); err != nil || got != f || f.DefaultFile() == "" {
			t.Errorf("%s: %v %v %q", f, got, err, f.DefaultFile())
		}
	}
	if _, err := ParsePlanFormat("xml"); err == nil || !strings.Contains(err.Error(), `"xml" (want json, lmd, gligen)`) {
		t.Fatalf("xml: %v", err)
	}
	p := &Plan{Version: PlanVersion, Objects: []Object{{Name: "a cat", Box: [4]float64{1, 2, 3, 4}, Descriptions: []string{"x"}}}, Background: "a room, Negative prompt: dogs"}
	if _, err := p.MarshalAs(LMDLayout); err == nil || !strings.Contains(err.Error(), `the background holds "Negative prompt:"`) {
		t.Fatalf("a label in the background: %v", err)
	}
}

// Whatever a plan file holds, reading it returns a checked plan or an error,
// and a plan read can be written in every format.
func FuzzDecodePlan(f *testing.F) {
	for _, s := range []string{waterfallPlanJSON, waterfallLMD, waterfallLMDCache, waterfallGLIGEN, waterfallGLIGEN4,
		"[('a cat', [-20, 100, 200, 200]), ('the sky', [0, 0, 512, 512])]", `{"phrases": ["a"], "boxes": [[0, 0, 1e-300, 1]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := decodePlan(raw)
		if err != nil {
			return
		}
		if err := p.Check(); err != nil {
			t.Fatalf("decoded an unchecked plan: %v", err)
		}
		for _, f := range PlanFormats {
			p.MarshalAs(f) // a label inside a name may refuse LMD; nothing may panic
		}
	})
}
