package rfbench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/tensor"
)

// Run is a benchmark run's description, written to bench.json.
type Run struct {
	Version       int               `json:"version"`
	PromptsFile   string            `json:"prompts_file"`
	PromptsSHA256 string            `json:"prompts_sha256"`
	Methods       []string          `json:"methods"`
	Seeds         int               `json:"seeds"`
	Config        rfnet.Config      `json:"config"`
	Model         map[string]string `json:"model"`
}

// Meta is the metadata file written next to each image.
type Meta struct {
	ID            string             `json:"id"`
	Area          string             `json:"area"`
	Category      string             `json:"category"`
	Prompt        string             `json:"prompt"`
	Method        string             `json:"method"`
	Seed          int                `json:"seed"`
	BgSeed        uint64             `json:"bg_seed"`
	Image         string             `json:"image"` // relative to the run folder
	Width         int                `json:"width"`
	Height        int                `json:"height"`
	Steps         int                `json:"steps"`
	Guidance      float64            `json:"guidance"`
	Scheduler     string             `json:"scheduler"`
	Plan          *llm.Plan          `json:"plan,omitempty"`
	OverallPrompt string             `json:"overall_prompt,omitempty"`
	Seconds       map[string]float64 `json:"seconds"`
	Model         map[string]string  `json:"model"`
}

// Runner generates a benchmark's images into Out.
type Runner struct {
	Model   *pipeline.Model
	Planner llm.Planner
	Config  rfnet.Config // steps, size, guidance, scheduler and RFNet's hyperparameters
	Out     string
	Info    map[string]string // the model's description (weights, hash, type) for the metadata
	Log     io.Writer
	// Progress is called after each item with the number done (skipped ones
	// included) and the total.
	Progress func(done, total int)
}

// Summary counts what a Run did.
type Summary struct{ Generated, Skipped, Failed int }

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, "rfnet-native: bench: "+format+"\n", args...)
	}
}

// paths of an item's files, relative to the run folder.
func itemPaths(it Item) (image, meta string) {
	base := filepath.Join("images", filepath.FromSlash(it.Key()))
	return base + ".png", base + ".json"
}

// Done reports whether an item's image and metadata are both written (the
// metadata is written last, so it marks a finished item).
func Done(out string, it Item) bool {
	img, meta := itemPaths(it)
	_, err1 := os.Stat(filepath.Join(out, img))
	_, err2 := os.Stat(filepath.Join(out, meta))
	return err1 == nil && err2 == nil
}

// Start writes bench.json, or checks that the run folder's bench.json
// describes the same run (so a resumed run does not mix settings).
func Start(out string, run Run) error {
	path := filepath.Join(out, "bench.json")
	if raw, err := os.ReadFile(path); err == nil {
		var old Run
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("rfbench: %s: %w", path, err)
		}
		a, _ := json.Marshal(struct {
			P string
			C rfnet.Config
			H string
		}{old.PromptsSHA256, old.Config, old.Model["hash"]})
		b, _ := json.Marshal(struct {
			P string
			C rfnet.Config
			H string
		}{run.PromptsSHA256, run.Config, run.Model["hash"]})
		if string(a) != string(b) {
			return fmt.Errorf("rfbench: %s describes a different run (prompt file, settings or model): use another --out, or delete it to start over", path)
		}
		// Methods and seeds may grow between runs; keep the union.
		run.Methods = union(old.Methods, run.Methods)
		run.Seeds = max(old.Seeds, run.Seeds)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("rfbench: %w", err)
	}
	return pipeline.WriteJSON(path, run)
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		found := false
		for _, y := range out {
			found = found || x == y
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

// PromptsHash is the SHA-256 of a prompt set, as written into bench.json.
func PromptsHash(prompts []Prompt) string {
	h := sha256.New()
	for _, p := range prompts {
		json.NewEncoder(h).Encode(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Run generates every item not done yet. A cancelled context stops it between
// items; an item that fails is reported and left for the next run.
func (r *Runner) Run(ctx context.Context, items []Item) (Summary, error) {
	var s Summary
	for k, it := range items {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		if Done(r.Out, it) {
			s.Skipped++
		} else if err := r.generate(ctx, it); err != nil {
			if errors.Is(err, context.Canceled) {
				return s, err
			}
			s.Failed++
			r.logf("%s failed: %v", it.Key(), err)
		} else {
			s.Generated++
		}
		if r.Progress != nil {
			r.Progress(k+1, len(items))
		}
	}
	return s, nil
}

// plan returns the cached plan of a prompt, asking the planner the first time.
func (r *Runner) plan(ctx context.Context, p Prompt) (*llm.Plan, error) {
	path := filepath.Join(r.Out, "plans", p.ID+".json")
	if plan, err := llm.ReadPlan(path); err == nil {
		return plan, nil
	}
	plan, err := r.Planner.Plan(ctx, p.Prompt)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return plan, plan.Write(path)
}

// methodConfig is the RFNet configuration of a method, with the item's seeds.
func (r *Runner) methodConfig(it Item) rfnet.Config {
	c := r.Config
	c.BgSeed, c.FgSeedStart = it.BgSeed(), it.BgSeed()+123456789
	switch it.Method {
	case "rfnet-no-saa":
		c.SAA = false
	case "rfnet-no-guidance":
		c.GuidanceConstraint = false
	case "rfnet-no-suppression":
		c.Suppression = false
	case "rfnet-none":
		c.SAA, c.GuidanceConstraint, c.Suppression = false, false, false
	}
	return c
}

func (r *Runner) generate(ctx context.Context, it Item) error {
	c := r.methodConfig(it)
	imgRel, metaRel := itemPaths(it)
	meta := Meta{ID: it.Prompt.ID, Area: it.Prompt.Area, Category: it.Prompt.Category, Prompt: it.Prompt.Prompt,
		Method: it.Method, Seed: it.Seed, BgSeed: c.BgSeed, Image: filepath.ToSlash(imgRel), Width: c.Width, Height: c.Height,
		Steps: c.Steps, Guidance: c.Guidance, Scheduler: c.Scheduler, Seconds: map[string]float64{}, Model: r.Info}
	start := time.Now()
	var image *tensor.Tensor
	var durations map[string]time.Duration
	params := fmt.Sprintf("%s\nSteps: %d, Sampler: %s, CFG scale: %g, Seed: %d, Size: %dx%d, Method: %s",
		it.Prompt.Prompt, c.Steps, c.Scheduler, c.Guidance, c.BgSeed, c.Width, c.Height, it.Method)
	if it.Method == "sd" {
		res, err := r.Model.Generate(pipeline.Request{Prompt: it.Prompt.Prompt, Steps: c.Steps, Guidance: c.Guidance,
			Scheduler: c.Scheduler, Width: c.Width, Height: c.Height, Seed: c.BgSeed}, nil)
		if err != nil {
			return err
		}
		image, durations = res.Image, res.Durations
	} else {
		plan, err := r.plan(ctx, it.Prompt)
		if err != nil {
			return err
		}
		res, err := rfnet.Run(r.Model, plan, rfnet.Options{Config: c})
		if err != nil {
			return err
		}
		meta.Plan, meta.OverallPrompt = plan, res.OverallPrompt
		image, durations = res.Image, res.Durations
		params += ", Overall prompt: " + res.OverallPrompt
	}
	for k, d := range durations {
		meta.Seconds[k] = d.Seconds()
	}
	meta.Seconds["total"] = time.Since(start).Seconds()
	out := filepath.Join(r.Out, imgRel)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := pipeline.WritePNG(out, pipeline.ToRGBA(image), map[string]string{"parameters": params}); err != nil {
		return err
	}
	// The metadata goes last: its presence marks the item finished.
	return pipeline.WriteJSON(filepath.Join(r.Out, metaRel), meta)
}

// ReadRun reads a run folder's bench.json.
func ReadRun(out string) (Run, error) {
	var r Run
	raw, err := os.ReadFile(filepath.Join(out, "bench.json"))
	if err != nil {
		return r, fmt.Errorf("rfbench: %s is not a benchmark run folder: %w", out, err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("rfbench: %s: %w", out, err)
	}
	return r, nil
}
