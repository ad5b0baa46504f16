package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"sort"

	xdraw "golang.org/x/image/draw"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/rfbench"
)

// Write renders the report of the run folder run into path. Files that fail
// their check (see rfbench.Check) are left out and listed in the report.
func Write(run, path string) error {
	info, err := rfbench.ReadRun(run)
	if err != nil {
		return err
	}
	metas, skipped, err := rfbench.LoadMetas(run)
	if err != nil {
		return err
	}
	results := map[string]map[string]rfbench.EvalResult{}
	entries, _ := os.ReadDir(filepath.Join(run, "eval"))
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		rs, broken, err := rfbench.LoadResults(run, e.Name())
		if err != nil {
			return err
		}
		skipped = append(skipped, broken...)
		for _, m := range metas {
			if r, ok := rs[key(m)]; ok && !r.Of(m) {
				delete(rs, key(m))
				skipped = append(skipped, fmt.Sprintf("eval/%s/%s.json: judged an earlier image of the item (run eval again)", e.Name(), key(m)))
			}
		}
		results[e.Name()] = rs
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, build(run, info, metas, results, skipped)); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return atomicfile.WriteBytes(path, buf.Bytes())
}

// maxSkipped is how many skipped files the report names; it counts the rest.
const maxSkipped = 20

type view struct {
	Run         rfbench.Run
	Table       *Table
	Rows        []row
	Methods     []string
	Columns     []column
	ImageCount  int
	Skipped     []string // the first maxSkipped, as "path: why"
	SkippedMore int
}

type column struct{ Key, Label string }

type row struct {
	ID, Prompt, Category, Area string
	Seed                       int
	Cells                      []cellView
}

type cellView struct {
	Method  string
	Image   template.URL
	Boxes   []box
	Scores  []scoreView
	Missing bool
}

type box struct {
	Name            string
	Left, Top, W, H float64 // percent
	Color           string
}

type scoreView struct {
	Judge, Text, Explanation string
}

var boxColors = []string{"#e6194b", "#3cb44b", "#0082c8", "#f58231", "#911eb4", "#46f0f0"}

func build(run string, info rfbench.Run, metas []rfbench.Meta, results map[string]map[string]rfbench.EvalResult, skipped []string) view {
	methods := info.Methods
	v := view{Run: info, Methods: methods, Table: Score(metas, results, methods), ImageCount: len(metas)}
	v.Skipped, v.SkippedMore = skipped[:min(len(skipped), maxSkipped)], max(0, len(skipped)-maxSkipped)
	v.Columns = []column{{"ra", "R&A"}, {"ci", "C&I"}, {"avg", "Avg"}}
	type rowKey struct {
		id   string
		seed int
	}
	byRow := map[rowKey]map[string]rfbench.Meta{}
	var order []rowKey
	for _, m := range metas {
		k := rowKey{m.ID, m.Seed}
		if byRow[k] == nil {
			byRow[k] = map[string]rfbench.Meta{}
			order = append(order, k)
		}
		byRow[k][m.Method] = m
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].id != order[j].id {
			return order[i].id < order[j].id
		}
		return order[i].seed < order[j].seed
	})
	for _, k := range order {
		var any rfbench.Meta
		for _, m := range byRow[k] {
			any = m
		}
		r := row{ID: k.id, Seed: k.seed, Prompt: any.Prompt, Category: any.Category, Area: any.Area}
		for _, meth := range methods {
			m, ok := byRow[k][meth]
			if !ok {
				r.Cells = append(r.Cells, cellView{Method: meth, Missing: true})
				continue
			}
			c := cellView{Method: meth, Image: thumbnail(run, m)}
			if m.Plan != nil {
				for i, o := range m.Plan.Objects {
					b := o.NormalizedBox()
					c.Boxes = append(c.Boxes, box{Name: o.Name, Left: 100 * b[0], Top: 100 * b[1], W: 100 * (b[2] - b[0]), H: 100 * (b[3] - b[1]),
						Color: boxColors[i%len(boxColors)]})
				}
			}
			for _, j := range v.Table.Judges {
				res, ok := results[j][key(m)]
				s := scoreView{Judge: j, Text: "not judged"}
				switch {
				case ok && res.Status == "ok" && res.Score != nil:
					s.Text, s.Explanation = fmt.Sprintf("%.3f", *res.Score), res.Explanation
					if s.Explanation == "" {
						s.Explanation = res.Description
					}
				case ok:
					s.Text, s.Explanation = "failed", res.Error
				}
				c.Scores = append(c.Scores, s)
			}
			r.Cells = append(r.Cells, c)
		}
		v.Rows = append(v.Rows, r)
	}
	return v
}

// thumbnail is the image of m as a 256-pixel-wide JPEG data URL; empty when
// it does not read (see rfbench.ReadImage) or is too large to decode.
func thumbnail(run string, m rfbench.Meta) template.URL {
	data, err := rfbench.ReadImage(run, m)
	if err != nil {
		return ""
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(data)); err != nil || int64(cfg.Width)*int64(cfg.Height) > rfbench.MaxDecodedPixels {
		return ""
	}
	src, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	w := 256
	h := src.Bounds().Dy() * w / max(1, src.Bounds().Dx())
	dst := image.NewRGBA(image.Rect(0, 0, w, max(1, h)))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), xdraw.Over, nil)
	var buf bytes.Buffer
	jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85})
	return template.URL("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"cell": func(t *Table, judge, method, col string) *Cell {
		if c := t.Cells[judge][method][col]; c != nil {
			return c
		}
		return &Cell{}
	},
	"fmt3": func(c *Cell) string {
		if c.Scored == 0 {
			return "–"
		}
		return fmt.Sprintf("%.3f", c.Mean)
	},
}).Parse(pageTemplate))
