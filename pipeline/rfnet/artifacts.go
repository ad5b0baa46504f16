package rfnet

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
)

// Trace appends events to a trace.jsonl file, one JSON object per line,
// flushed as they come so that a killed run keeps what it traced.
type Trace struct {
	mu   sync.Mutex
	path string
	f    *os.File
	w    *bufio.Writer
}

// PartialTrace is the name a run's trace has in its out-dir until the run is
// written out (WriteArtifacts renames it trace.jsonl): a failed or killed run
// leaves it beside the earlier run's files without passing for theirs.
const PartialTrace = "trace.partial.jsonl"

// OpenTrace creates (truncates) path.
func OpenTrace(path string) (*Trace, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("rfnet: trace: %w", err)
	}
	return &Trace{path: path, f: f, w: bufio.NewWriter(f)}, nil
}

// Path is the file the trace is written to.
func (t *Trace) Path() string { return t.path }

// Add writes one event.
func (t *Trace) Add(e TraceEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	line, _ := json.Marshal(e)
	t.w.Write(append(line, '\n'))
	t.w.Flush()
}

// Close closes the file.
func (t *Trace) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	err := errors.Join(t.w.Flush(), t.f.Sync(), t.f.Close())
	t.f = nil
	return err
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// slug turns an object name into a file name part.
func slug(s string) string {
	s = strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 40 {
		s = s[:40]
	}
	if s == "" {
		s = "object"
	}
	return s
}

// RunInfo is run.json: what ran and how long it took.
type RunInfo struct {
	Prompt          string             `json:"prompt"`
	OverallPrompt   string             `json:"overall_prompt"`
	OverallNegative string             `json:"overall_negative_prompt"`
	SONegative      string             `json:"so_negative_prompt"`
	ObjectPrompts   []string           `json:"object_prompts"`
	Config          Config             `json:"config"`
	Model           ModelInfo          `json:"model"`
	Seconds         map[string]float64 `json:"seconds"`
	// ProfileSeconds are the run's --profile-out spans summed by name.
	ProfileSeconds map[string]float64 `json:"profile_seconds,omitempty"`
	// MaskMethod is how the objects' masks were made: "sam-point" or
	// "sam-box" (§8.1), "attention" (§8.2), or "mixed" when a box-mode
	// object fell back; SAM has §8.1's choice per object (null where none).
	MaskMethod string           `json:"mask_method"`
	SAM        []*SAMChoiceInfo `json:"sam,omitempty"`
}

// SAMChoiceInfo is a §8.1 choice as files record it: one object's entry in
// run.json's "sam" (its candidates are objects/NN-name-sam-K.png) and
// segment's selected.json.
type SAMChoiceInfo struct {
	Method      string    `json:"method"`
	Index       int       `json:"index"`
	Scores      []int     `json:"scores"`
	Sizes       []int     `json:"sizes"`
	Confidences []float64 `json:"confidences"`
	CoarseIoUs  []float64 `json:"coarse_ious"`
	Point       [2]int    `json:"point"`
	Cell        [2]int    `json:"cell"`
	Box         *[4]int   `json:"box,omitempty"`
}

// Info is c without its masks, as files record it.
func (c *SAMChoice) Info() *SAMChoiceInfo {
	return &SAMChoiceInfo{Method: c.Method, Index: c.Index, Scores: c.Scores, Sizes: c.Sizes,
		Confidences: c.Confidences, CoarseIoUs: c.CoarseIoUs, Point: c.Point, Cell: c.Cell, Box: c.Box}
}

// MaskMethod is how res's masks were made (run.json's mask_method).
func MaskMethod(res *Result) string {
	m := MaskAttention
	for j, o := range res.Objects {
		if j == 0 {
			m = o.MaskMethod
		} else if o.MaskMethod != m {
			return "mixed"
		}
	}
	return m
}

// samCandidateSuffix names object files of §8.1's candidates: -sam-0.png...
func samCandidateSuffix(k int) string { return fmt.Sprintf("-sam-%d.png", k) }

// WriteArtifacts writes everything a run produced into dir: image.png (with
// the parameters text chunk), plan.json, layout.png (the plan's boxes and
// labels over the image), saa.json, run.json, geometry.json, the pictures of
// pictures.go (regions.png, composed.png, preview.png with previews) and
// index.html, which shows them all, and per object objects/NN-name.png,
// -mask.png and -attention.png (the word token's aggregated cross-attention
// over the object image), -overall-attention.png and
// -reference-attention.png; trace, when not nil, becomes trace.jsonl. The PNGs of the image and the objects carry their
// parameters text, naming the model as ckpt.
//
// Every file is first written in full under a temporary name, so a full disk
// or a failed encoder leaves an earlier run in dir as it was. Then the earlier
// run's image.png goes, and the files of objects/ and the preview.png that
// this run does not write; the new files are renamed into place, image.png last: a dir that
// holds image.png holds all of one run.
func WriteArtifacts(dir string, res *Result, cfg Config, model ModelInfo, ckpt infotext.Checkpoint, trace *Trace) (err error) {
	objects := filepath.Join(dir, "objects")
	if err := os.MkdirAll(objects, 0o755); err != nil {
		return fmt.Errorf("rfnet: %w", err)
	}
	var files []*atomicfile.Pending
	defer func() {
		if err != nil {
			atomicfile.AbortAll(files)
		}
	}()
	add := func(p *atomicfile.Pending, err error) error {
		if p != nil {
			files = append(files, p)
		}
		return err
	}
	img := pipeline.ToRGBA(res.Image)
	params := Parameters(res, cfg, ckpt)
	planJSON, err := res.Plan.Marshal()
	if err != nil {
		return err
	}
	if err := add(atomicfile.PrepareBytes(filepath.Join(dir, "plan.json"), planJSON)); err != nil {
		return err
	}
	if err := add(pipeline.PreparePNG(filepath.Join(dir, "layout.png"), drawPlan(img, res.Objects), nil)); err != nil {
		return err
	}
	if err := add(pipeline.PrepareJSON(filepath.Join(dir, "saa.json"), res.SAA)); err != nil {
		return err
	}
	info := RunInfo{Prompt: res.Plan.Prompt, OverallPrompt: res.OverallPrompt, OverallNegative: res.OverallNegative,
		SONegative: res.SONegative, Config: cfg, Model: model, Seconds: map[string]float64{},
		ProfileSeconds: res.Profile, MaskMethod: MaskMethod(res)}
	for k, d := range res.Durations {
		info.Seconds[k] = d.Seconds()
	}
	keep := map[string]bool{}
	for j, o := range res.Objects {
		info.ObjectPrompts = append(info.ObjectPrompts, o.Prompt)
		base := objectBase(j, o.Name)
		oi := pipeline.ToRGBA(o.Image)
		type picture struct {
			suffix string
			im     image.Image
			text   map[string]string
		}
		var candidates []picture
		if c := o.SAM; c != nil {
			info.SAM = append(info.SAM, c.Info())
			for k, m := range c.Candidates {
				v := make([]float64, len(m))
				for i, b := range m {
					if b {
						v[i] = 1
					}
				}
				candidates = append(candidates, picture{samCandidateSuffix(k), maskImage(v, c.MaskH, c.MaskW, oi.Bounds()), nil})
			}
		} else if MaskMethod(res) != MaskAttention {
			info.SAM = append(info.SAM, nil)
		}
		for _, f := range append([]picture{
			{".png", oi, map[string]string{"parameters": objectParameters(params, o, params.ObjectSeeds[j], res.SONegative).Format()}},
			{"-mask.png", maskImage(o.Mask, res.LatentH, res.LatentW, oi.Bounds()), nil},
			{"-attention.png", heatmap(oi, o.Saliency, o.SalH, o.SalW), nil},
			{overallAttentionSuffix, attentionPicture(img, o.OverallAttention, res.LatentH, res.LatentW, o.Box, objectColor(j)), nil},
			{referenceAttentionSuffix, attentionPicture(img, o.ReferenceAttention, res.LatentH, res.LatentW, o.Box, objectColor(j)), nil},
		}, candidates...) {
			keep[base+f.suffix] = true
			if err := add(pipeline.PreparePNG(filepath.Join(objects, base+f.suffix), f.im, f.text)); err != nil {
				return err
			}
		}
	}
	if err := add(pipeline.PrepareJSON(filepath.Join(dir, "run.json"), info)); err != nil {
		return err
	}
	if err := add(pipeline.PrepareJSON(filepath.Join(dir, "geometry.json"), res.Geometry)); err != nil {
		return err
	}
	for _, p := range scenePictures(img, res) {
		if err := add(pipeline.PreparePNG(filepath.Join(dir, p.name), p.im, nil)); err != nil {
			return err
		}
	}
	page, err := indexPage(res, cfg, nil)
	if err != nil {
		return err
	}
	if err := add(atomicfile.PrepareBytes(filepath.Join(dir, indexFile), page)); err != nil {
		return err
	}
	final, err := pipeline.PreparePNG(filepath.Join(dir, "image.png"), img, map[string]string{"parameters": params.Format()})
	if err != nil {
		return err
	}
	files = append(files, final)
	if trace != nil {
		if err := trace.Close(); err != nil {
			return fmt.Errorf("rfnet: trace: %w", err)
		}
	}

	// Everything is written: now the earlier run makes way.
	if err := os.Remove(final.Path()); err != nil && !errors.Is(err, fs.ErrNotExist) { // the file, not a link to it
		return fmt.Errorf("rfnet: %w", err)
	}
	if err := removeStale(objects, keep); err != nil {
		return err
	}
	// An earlier run's refined image would pass for this run's (run.json no
	// longer records it); RefineToDir writes this run's after.
	if err := os.Remove(filepath.Join(dir, SDXLImage)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rfnet: %w", err)
	}
	if len(res.Previews) == 0 { // an earlier run's strip would pass for this run's
		if err := os.Remove(filepath.Join(dir, previewFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rfnet: %w", err)
		}
	}
	if trace != nil {
		if err := os.Rename(trace.Path(), filepath.Join(dir, "trace.jsonl")); err != nil {
			return fmt.Errorf("rfnet: trace: %w", err)
		}
	}
	return atomicfile.CommitAll(files)
}

// objectBase is the start of the names of object j's files in objects/.
func objectBase(j int, name string) string { return fmt.Sprintf("%02d-%s", j, slug(name)) }

// Parameters are the parameters of a run's image: the scene's prompt with
// RFNet's overall negative prompt, the background seed as A1111's Seed, and
// RFNet's keys: its overall prompt, the objects' prompts and their seeds, in
// the order it generated them.
func Parameters(res *Result, cfg Config, ckpt infotext.Checkpoint) infotext.Params {
	seed := cfg.BgSeed
	p := infotext.Params{Prompt: res.Plan.Prompt, NegativePrompt: res.OverallNegative, Steps: cfg.Steps, Scheduler: cfg.Scheduler,
		CFGScale: cfg.Guidance, Seed: &seed, Width: cfg.Width, Height: cfg.Height, Model: ckpt, Method: "rfnet",
		OverallPrompt: res.OverallPrompt, ObjectSeeds: fgSeeds(cfg, len(res.Objects))}
	for _, o := range res.Objects {
		p.Objects = append(p.Objects, o.Prompt)
	}
	return p
}

// objectParameters are those of an object's image: its prompt with the
// single-object negative prompt; its noise is the background seed's with its
// own seed's blended in.
func objectParameters(scene infotext.Params, o ObjectResult, seed uint64, negative string) infotext.Params {
	p := scene
	p.Prompt, p.NegativePrompt = o.Prompt, negative
	p.OverallPrompt, p.Objects, p.ObjectSeeds = "", nil, []uint64{seed}
	return p
}

// objectFile matches the names WriteArtifacts gives the files of objects/.
var objectFile = regexp.MustCompile(`^[0-9]{2,}-[a-z0-9-]+\.png$`)

// removeStale deletes the files of an earlier run in objects/ that this run
// does not write (it had other objects, or more). Only names of the form this
// package writes go: anything else there is someone else's.
func removeStale(objects string, keep map[string]bool) error {
	entries, err := os.ReadDir(objects)
	if err != nil {
		return fmt.Errorf("rfnet: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || keep[e.Name()] || !objectFile.MatchString(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(objects, e.Name())); err != nil {
			return fmt.Errorf("rfnet: %w", err)
		}
	}
	return nil
}

var palette = []color.RGBA{{230, 25, 75, 255}, {60, 180, 75, 255}, {0, 130, 200, 255}, {245, 130, 48, 255},
	{145, 30, 180, 255}, {70, 240, 240, 255}, {240, 50, 230, 255}, {210, 245, 60, 255}}

// drawPlan draws each object's box (on the image's scale) and name over a copy of img.
func drawPlan(img *image.RGBA, objs []ObjectResult) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, image.Point{}, draw.Src)
	W, H := float64(img.Bounds().Dx()), float64(img.Bounds().Dy())
	for j, o := range objs {
		c := objectColor(j)
		b := o.Box
		x0, y0 := int(b[0]*W), int(b[1]*H)
		strokeBox(out, image.Rect(x0, y0, int(b[2]*W), int(b[3]*H)), c)
		label := o.Name
		face := basicfont.Face7x13
		w := font.MeasureString(face, label).Ceil()
		draw.Draw(out, image.Rect(x0, y0, x0+w+4, y0+15), &image.Uniform{c}, image.Point{}, draw.Over)
		d := font.Drawer{Dst: out, Src: image.White, Face: face, Dot: fixed.P(x0+2, y0+12)}
		d.DrawString(label)
	}
	return out
}

// strokeBox draws r's border, two pixels wide, inside r.
func strokeBox(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	x1, y1 := r.Max.X-1, r.Max.Y-1
	for t := 0; t < 2; t++ {
		for x := r.Min.X; x <= x1; x++ {
			img.SetRGBA(x, r.Min.Y+t, c)
			img.SetRGBA(x, y1-t, c)
		}
		for y := r.Min.Y; y <= y1; y++ {
			img.SetRGBA(r.Min.X+t, y, c)
			img.SetRGBA(x1-t, y, c)
		}
	}
}

// maskImage upsamples a latent-grid mask (nearest) to the image bounds, white on black.
func maskImage(m []float64, h, w int, r image.Rectangle) *image.Gray {
	out := image.NewGray(r)
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			if m[(y*h/r.Dy())*w+x*w/r.Dx()] > 0 {
				out.SetGray(x, y, color.Gray{255})
			}
		}
	}
	return out
}

// heatmap blends a normalized, bilinearly upsampled attention map over img
// with a blue-to-red color scale.
func heatmap(img *image.RGBA, sal []float64, h, w int) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, image.Point{}, draw.Src)
	if len(sal) == 0 {
		return out
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range sal {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	g := bilinear(grid{h, w, sal}, img.Bounds().Dy(), img.Bounds().Dx())
	for y := 0; y < g.h; y++ {
		for x := 0; x < g.w; x++ {
			v := 0.0
			if hi > lo {
				v = (g.v[y*g.w+x] - lo) / (hi - lo)
			}
			c := img.RGBAAt(x, y)
			heat := color.RGBA{uint8(255 * clamp01(1.5-math.Abs(4*v-3))), uint8(255 * clamp01(1.5-math.Abs(4*v-2))), uint8(255 * clamp01(1.5-math.Abs(4*v-1))), 255}
			mix := func(a, b uint8) uint8 { return uint8((int(a) + int(b)) / 2) }
			out.SetRGBA(x, y, color.RGBA{mix(c.R, heat.R), mix(c.G, heat.G), mix(c.B, heat.B), 255})
		}
	}
	return out
}

func clamp01(v float64) float64 { return math.Max(0, math.Min(1, v)) }
