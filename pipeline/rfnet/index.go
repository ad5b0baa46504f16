package rfnet

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"sort"
	"strings"

	"github.com/rfnet/rfnet-native/pipeline"
)

// indexFile is the out-dir's page: the plan, the numbers of geometry.json and
// the pictures, which it references by relative paths so that the out-dir can
// be moved or copied whole and read offline.
const indexFile = "index.html"

type indexView struct {
	Prompt, OverallPrompt, OverallNegative, SONegative string
	Width, Height, Steps, Objects                      int
	Geometry                                           Geometry
	Window                                             int // the steps the attention pictures average
	Rows                                               []indexObject
	Tokens                                             []indexToken
	Preview                                            string     // "" without previews
	SDXL                                               *indexSDXL // nil without a refiner pass
	Seconds                                            []indexTime
}

// indexSDXL is the refiner pass's picture (--sdxl), shown beside image.png.
type indexSDXL struct {
	File                           string
	Width, Height, StepsRun, Steps int
	Strength, Guidance             float64
	Seed                           uint64
	NegativePrompt                 string
}

type indexObject struct {
	ObjectGeometry
	Index           int
	Color           string
	Left, Top, W, H float64 // the scene box, percent of the image
	Prompt          string
	Steered         string // the single-object run's steered steps, as ranges
	// file paths, relative to the out-dir
	ImageFile, MaskFile, SaliencyFile, OverallFile, ReferenceFile string
	SAM                                                           []indexCandidate // §8.1's candidates, when SAM made the mask
}

// indexCandidate is one SAM candidate of an object's row.
type indexCandidate struct {
	File, Caption string
	Chosen        bool
}

type indexToken struct {
	Position int
	Text     string
	Color    string // the color of the object whose phrase holds the token; "" for none
	Word     bool   // a phrase's word token
}

type indexTime struct {
	Stage   string
	Seconds string
}

func cssColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// indexPage renders index.html for res; sdxl, when not nil, is the record of
// the refiner pass whose image-sdxl.png is in the out-dir (RefineToDir).
func indexPage(res *Result, cfg Config, sdxl *pipeline.RefineSidecar) ([]byte, error) {
	g := res.Geometry
	v := indexView{Prompt: res.Plan.Prompt, OverallPrompt: res.OverallPrompt, OverallNegative: res.OverallNegative,
		SONegative: res.SONegative, Width: cfg.Width, Height: cfg.Height, Steps: cfg.Steps, Objects: len(res.Objects),
		Geometry: g, Window: attentionWindow(cfg)}
	tokens := make([]indexToken, len(g.OverallTokens))
	for i, t := range g.OverallTokens {
		tokens[i] = indexToken{Position: i, Text: t}
	}
	for j, o := range res.Objects {
		base := "objects/" + objectBase(j, o.Name)
		col := cssColor(objectColor(j))
		og := g.Objects[j]
		v.Rows = append(v.Rows, indexObject{ObjectGeometry: og, Index: j, Color: col, Prompt: o.Prompt,
			Left: 100 * o.Box[0], Top: 100 * o.Box[1], W: 100 * (o.Box[2] - o.Box[0]), H: 100 * (o.Box[3] - o.Box[1]),
			ImageFile: base + ".png", MaskFile: base + "-mask.png", SaliencyFile: base + "-attention.png",
			OverallFile: base + overallAttentionSuffix, ReferenceFile: base + referenceAttentionSuffix,
			Steered: stepRanges(og.SteeredSteps), SAM: samCandidates(base, o.SAM)})
		for _, p := range og.OverallPrompt.Positions {
			if tokens[p].Color == "" {
				tokens[p].Color = col
			}
		}
		tokens[og.OverallPrompt.WordIndex].Word = true
	}
	v.Tokens = tokens
	if len(res.Previews) > 0 {
		v.Preview = previewFile
	}
	var stages []string
	for k := range res.Durations {
		stages = append(stages, k)
	}
	sort.Strings(stages)
	for _, k := range stages {
		v.Seconds = append(v.Seconds, indexTime{k, fmt.Sprintf("%.2f", res.Durations[k].Seconds())})
	}
	if sdxl != nil {
		v.SDXL = &indexSDXL{File: SDXLImage, Width: sdxl.Width, Height: sdxl.Height, StepsRun: sdxl.StepsRun, Steps: sdxl.Steps,
			Strength: sdxl.Strength, Guidance: sdxl.Guidance, Seed: sdxl.Seed, NegativePrompt: sdxl.NegativePrompt}
		if sec, ok := sdxl.Seconds["refine"]; ok {
			v.Seconds = append(v.Seconds, indexTime{"sdxl refine", fmt.Sprintf("%.2f", sec)})
		}
	}
	var buf bytes.Buffer
	if err := indexTemplate.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("rfnet: %s: %w", indexFile, err)
	}
	return buf.Bytes(), nil
}

// stepRanges writes 0-based steps as 1-based ranges: "1-4, 7" ("none" for none).
func stepRanges(steps []int) string {
	if len(steps) == 0 {
		return "none"
	}
	var parts []string
	for i := 0; i < len(steps); {
		j := i
		for j+1 < len(steps) && steps[j+1] == steps[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprint(steps[i]+1))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", steps[i]+1, steps[j]+1))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

var indexTemplate = template.Must(template.New("index").Funcs(template.FuncMap{
	"ranges": stepRanges,
	"f2":     func(v float64) string { return fmt.Sprintf("%.2f", v) },
}).Parse(indexTemplateText))

// samCandidates are the row's SAM candidates with their numbers (none without SAM).
func samCandidates(base string, c *SAMChoice) []indexCandidate {
	if c == nil {
		return nil
	}
	var out []indexCandidate
	for k := range c.Candidates {
		out = append(out, indexCandidate{File: base + samCandidateSuffix(k), Chosen: k == c.Index,
			Caption: fmt.Sprintf("SAM %d: %d cells, confidence %.3f, coarse IoU %.3f, score %d", k, c.Sizes[k], c.Confidences[k], c.CoarseIoUs[k], c.Scores[k])})
	}
	return out
}
