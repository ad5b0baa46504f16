package report

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/rfbench"
)

// R&A and C&I average their own items, Avg pools all of them; failed and
// unjudged items are counted but never scored.
func TestScorePooling(t *testing.T) {
	ra, ci := rfbench.RealisticAnalytical, rfbench.CreativeImaginative
	metas := []rfbench.Meta{
		{ID: "a", Area: ra, Category: "x", Method: "sd"},
		{ID: "b", Area: ci, Category: "y", Method: "sd"},
		{ID: "c", Area: ci, Category: "y", Method: "sd"},
		{ID: "d", Area: ci, Category: "z", Method: "sd"},
		{ID: "e", Area: ci, Category: "z", Method: "sd"},
	}
	f := func(v float64) *float64 { return &v }
	res := map[string]map[string]rfbench.EvalResult{"gpt4score": {
		"sd/a-s0": {ID: "a", Method: "sd", Status: "ok", Score: f(0.9)},
		"sd/b-s0": {ID: "b", Method: "sd", Status: "ok", Score: f(0.3)},
		"sd/c-s0": {ID: "c", Method: "sd", Status: "ok", Score: f(0.6)},
		"sd/d-s0": {ID: "d", Method: "sd", Status: "failed"},
	}}
	tab := Score(metas, res, []string{"sd"})
	cells := tab.Cells["gpt4score"]["sd"]
	for col, want := range map[string]float64{"ra": 0.9, "ci": 0.45, "avg": 0.6, "y": 0.45} {
		if math.Abs(cells[col].Mean-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", col, cells[col].Mean, want)
		}
	}
	if c := cells["ci"]; c.Scored != 2 || c.Failed != 1 || c.Total != 4 {
		t.Errorf("ci counts %+v", c)
	}
	if got := tab.Categories; len(got) != 3 || got[0] != "x" {
		t.Errorf("categories %v", got)
	}
}
