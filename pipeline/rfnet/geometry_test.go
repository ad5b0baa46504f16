package rfnet

import (
	"math"
	"slices"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// The geometry of a run is what the run used: the shift moved the mask onto
// the aligned mask, the mask's area and center of mass are those of the mask,
// the guided steps are those the trace has iterations for, and the phrase
// positions point at the phrase's tokens in the prompt.
func TestGeometryIsWhatTheRunUsed(t *testing.T) {
	m := tinyModel(t, "tiny-sd2", tensor.Float32)
	c := testConfig()
	iterated := map[int]map[int]bool{} // object (-1: overall) → steps
	res, err := Run(m, testPlan(), Options{Config: c, PreviewEvery: 3, Trace: func(e TraceEvent) {
		if e.Iteration == nil {
			return
		}
		j := -1
		if e.Object != nil {
			j = *e.Object
		}
		if iterated[j] == nil {
			iterated[j] = map[int]bool{}
		}
		iterated[j][*e.Step] = true
	}})
	if err != nil {
		t.Fatal(err)
	}
	g := res.Geometry
	h, w := res.LatentH, res.LatentW
	if g.LatentGrid != [2]int{h, w} || len(g.Objects) != len(res.Objects) {
		t.Fatalf("geometry %+v", g)
	}
	steps := func(j int) []int {
		out := []int{}
		for s := range iterated[j] {
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	}
	for j, o := range res.Objects {
		og := g.Objects[j]
		if og.Name != o.Name || og.Shift.Cells != o.Shift {
			t.Errorf("object %d: geometry %+v, run %s shift %v", j, og, o.Name, o.Shift)
		}
		if moved, _ := shifted(o.Mask, h, w, og.Shift.Cells[0], og.Shift.Cells[1]); !slices.Equal(moved, o.AlignedMask) {
			t.Errorf("%s: the mask moved by %v is not the aligned mask", o.Name, og.Shift.Cells)
		}
		area, sx, sy := 0, 0.0, 0.0
		for i, v := range o.Mask {
			if v > 0 {
				area++
				sx += float64(i % w)
				sy += float64(i / w)
			}
		}
		com := [2]float64{sx / float64(area), sy / float64(area)}
		if og.Mask.AreaCells != area || og.Mask.CenterOfMass != com {
			t.Errorf("%s: mask %+v, want area %d center %v", o.Name, og.Mask, area, com)
		}
		want := [2]float64{((o.Box[0]+o.Box[2])/2)*float64(w) - com[0], ((o.Box[1]+o.Box[3])/2)*float64(h) - com[1]}
		for k := range want {
			if math.Abs(og.Shift.Unquantized[k]-want[k]) > 1e-9 {
				t.Errorf("%s: unquantized shift %v, want %v", o.Name, og.Shift.Unquantized, want)
			}
		}
		if !slices.Equal(og.SteeredSteps, steps(j)) {
			t.Errorf("%s: guided steps %v, the trace steered at %v", o.Name, og.SteeredSteps, steps(j))
		}
		for _, p := range []PhraseTokens{og.SOPrompt, og.OverallPrompt} {
			if want := m.Tokenizer.Tokens(m.Tokenizer.Encode(p.Phrase)); !slices.Equal(p.Tokens, want) || p.WordToken != p.Tokens[len(p.Tokens)-1] {
				t.Errorf("%s: phrase %+v, want tokens %v", o.Name, p, want)
			}
		}
		if og.SOPrompt.Prompt != o.Prompt || og.OverallPrompt.Prompt != res.OverallPrompt || og.SAA.Final != res.SAA[j].Final {
			t.Errorf("%s: prompts %q, %q, SAA %+v", o.Name, og.SOPrompt.Prompt, og.OverallPrompt.Prompt, og.SAA)
		}
		if len(o.OverallAttention) != h*w || len(o.ReferenceAttention) != h*w {
			t.Errorf("%s: attention maps of %d and %d cells", o.Name, len(o.OverallAttention), len(o.ReferenceAttention))
		}
	}
	if g.FrozenSteps != c.frozenSteps() || !slices.Equal(g.OverallSteeredSteps, steps(-1)) {
		t.Errorf("frozen %d guided %v, the trace steered at %v", g.FrozenSteps, g.OverallSteeredSteps, steps(-1))
	}
	if n := len(g.OverallTokens); g.OverallTokens[0] != "<|startoftext|>" || g.OverallTokens[n-1] != "<|endoftext|>" {
		t.Errorf("overall tokens %v", g.OverallTokens)
	}
	if len(res.Previews) != 2 || res.Previews[0].Step != 3 || res.Previews[1].Step != 6 || res.Composed == nil {
		t.Errorf("previews %v, composed %v", res.Previews, res.Composed)
	}
}
