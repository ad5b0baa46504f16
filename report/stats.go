package report

import (
	"sort"

	"github.com/rfnet/rfnet-native/rfbench"
)

// Cell is a mean score and how many items it pools.
type Cell struct {
	Mean   float64
	Scored int // items with a score
	Failed int // items the judge failed on
	Total  int // items generated
}

func (c *Cell) add(r *rfbench.EvalResult) {
	c.Total++
	switch {
	case r == nil:
	case r.Status == "ok" && r.Score != nil:
		c.Mean += (*r.Score - c.Mean) / float64(c.Scored+1)
		c.Scored++
	default:
		c.Failed++
	}
}

// Table holds the scores of a run: per judge, per method, per column
// ("ra", "ci", "avg", or a category name).
type Table struct {
	Judges     []string
	Methods    []string
	Categories []string // in the order they first appear, R&A first
	Cells      map[string]map[string]map[string]*Cell
}

// Score pools the results: R&A and C&I over the items of each area, the
// average over all items (not the mean of the two areas), every seed included.
func Score(metas []rfbench.Meta, results map[string]map[string]rfbench.EvalResult, methods []string) *Table {
	t := &Table{Methods: methods, Cells: map[string]map[string]map[string]*Cell{}}
	for j := range results {
		t.Judges = append(t.Judges, j)
	}
	sort.Strings(t.Judges)
	seen := map[string]bool{}
	var ra, ci []string
	for _, m := range metas {
		if !seen[m.Category] {
			seen[m.Category] = true
			if m.Area == rfbench.RealisticAnalytical {
				ra = append(ra, m.Category)
			} else {
				ci = append(ci, m.Category)
			}
		}
	}
	t.Categories = append(ra, ci...)
	for _, j := range t.Judges {
		t.Cells[j] = map[string]map[string]*Cell{}
		for _, meth := range methods {
			t.Cells[j][meth] = map[string]*Cell{}
		}
		for _, m := range metas {
			cols, ok := t.Cells[j][m.Method]
			if !ok {
				continue
			}
			var r *rfbench.EvalResult
			if res, ok := results[j][key(m)]; ok {
				r = &res
			}
			area := "ci"
			if m.Area == rfbench.RealisticAnalytical {
				area = "ra"
			}
			for _, col := range []string{area, "avg", m.Category} {
				if cols[col] == nil {
					cols[col] = &Cell{}
				}
				cols[col].add(r)
			}
		}
	}
	return t
}

func key(m rfbench.Meta) string {
	return rfbench.EvalResult{ID: m.ID, Method: m.Method, Seed: m.Seed}.Key()
}
