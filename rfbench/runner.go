package rfbench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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
	ID          string `json:"id"`
	Area        string `json:"area"`
	Category    string `json:"category"`
	Prompt      string `json:"prompt"`
	Method      string `json:"method"`
	Seed        int    `json:"seed"`
	BgSeed      uint64 `json:"bg_seed"`
	Image       string `json:"image"` // relative to the run folder
	ImageBytes  int64  `json:"image_bytes"`
	ImageSHA256 string `json:"image_sha256"` // with ImageBytes, what Check compares
	// HashAdded marks a sidecar of an earlier version, which recorded no
	// size and hash: they were computed later from the image found beside it
	// (by Check, and written in by bench).
	HashAdded     bool               `json:"hash_added,omitempty"`
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

// Summary counts what a Run or an Evaluate did.
type Summary struct {
	Generated, Skipped, Failed int
	// Broken lists the items that failed Check, each as "path: why": Run
	// generates them again (so they count in Generated or Failed too),
	// Evaluate leaves them out.
	Broken []string
	// Busy lists the items Run left unfinished to the live processes that
	// had claimed them, each as "claim file (holder)".
	Busy []string
	// Recorded counts the items of an earlier version whose sidecar Run
	// completed with the image's size and hash.
	Recorded int
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, "rfnet-native: bench: "+format+"\n", args...)
	}
}

// paths of an item's files, relative to the run folder, with slashes.
func itemPaths(it Item) (image, meta string) {
	base := "images/" + it.Key()
	return base + ".png", base + ".json"
}

// PromptsHash is the SHA-256 of a prompt set, as written into bench.json.
func PromptsHash(prompts []Prompt) string {
	h := sha256.New()
	for _, p := range prompts {
		json.NewEncoder(h).Encode(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Run generates every item that is not finished and intact (see Check) and
// not claimed by another live process; a broken one is logged with why. A
// cancelled context stops it between items; an item that fails is reported
// and left for the next run. The items another process held when their turn
// came are looked at once more at the end: that process may have finished
// them meanwhile, or died long enough ago for its claim to be stale; those
// still held are listed in Busy.
func (r *Runner) Run(ctx context.Context, items []Item) (s Summary, err error) {
	defer func() {
		if s.Recorded > 0 {
			r.logf("recorded the size and hash of %d items of an earlier version", s.Recorded)
		}
	}()
	var held []Item
	for k, it := range items {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		busy, err := r.runItem(ctx, it, &s)
		if err != nil {
			return s, err
		}
		if busy != "" {
			held = append(held, it)
		}
		if r.Progress != nil {
			r.Progress(k+1, len(items))
		}
	}
	for _, it := range held {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		busy, err := r.runItem(ctx, it, &s)
		if err != nil {
			return s, err
		}
		if busy != "" {
			s.Busy = append(s.Busy, busy)
		}
	}
	return s, nil
}

// runItem does one item and counts the outcome in s, except for an item
// another live process holds: then it returns the claim file and its holder.
// Only a cancelled context is returned as an error.
func (r *Runner) runItem(ctx context.Context, it Item, s *Summary) (busy string, err error) {
	imgRel, metaRel := itemPaths(it)
	if ok, _ := r.finished(metaRel, s); ok {
		return "", nil
	}
	claimRel := strings.TrimSuffix(imgRel, ".png") + ".claim"
	claimPath := filepath.Join(r.Out, filepath.FromSlash(claimRel))
	os.MkdirAll(filepath.Dir(claimPath), 0o755) // on error, claim says why
	release, holder, err := claim(claimPath, r.Log)
	switch {
	case err != nil:
		s.Failed++
		r.logf("%s failed: %v", it.Key(), err)
		return "", nil
	case holder != nil:
		return fmt.Sprintf("%s (%s)", claimRel, holder), nil
	}
	defer release()
	// Checked again under the claim: another process may have finished the
	// item between the first check and the claim.
	if ok, err := r.finished(metaRel, s); ok {
		return "", nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.Broken = append(s.Broken, err.Error())
		r.logf("%v: generating it again", err)
	}
	if err := r.generate(ctx, it); err != nil {
		if errors.Is(err, context.Canceled) {
			return "", err
		}
		s.Failed++
		r.logf("%s failed: %v", it.Key(), err)
		return "", nil
	}
	s.Generated++
	return "", nil
}

// finished reports whether the item of the sidecar metaRel is finished and
// intact, and counts it as skipped; if not, err says why (see Check). A
// sidecar of an earlier version gets the size and hash of its intact image
// written in.
func (r *Runner) finished(metaRel string, s *Summary) (ok bool, err error) {
	c, err := check(r.Out, metaRel)
	if err != nil {
		return false, err
	}
	if c.legacy {
		if err := c.record(r.Out, metaRel); err != nil {
			r.logf("%s: could not record the image's size and hash: %v", metaRel, err)
		} else {
			s.Recorded++
		}
	}
	s.Skipped++
	return true, nil
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

// generate makes one item. A panic in the goroutine that calls it (a bug in
// the pipeline or the planner) becomes the item's error, with where it
// happened, so that such a bug in one item does not stop an unattended run.
// A panic inside a backend's worker goroutines (the CPU backend's parallel
// loops) is not recovered: Go ends the whole process, as it would for any
// goroutine, and the next run resumes. Either way the files are written
// atomically and the sidecar last, so an item that panicked never looks
// finished.
func (r *Runner) generate(ctx context.Context, it Item) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v%s", p, panicStack())
		}
	}()
	c := r.methodConfig(it)
	imgRel, metaRel := itemPaths(it)
	meta := Meta{ID: it.Prompt.ID, Area: it.Prompt.Area, Category: it.Prompt.Category, Prompt: it.Prompt.Prompt,
		Method: it.Method, Seed: it.Seed, BgSeed: c.BgSeed, Image: imgRel, Width: c.Width, Height: c.Height,
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
	out := filepath.Join(r.Out, filepath.FromSlash(imgRel))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := pipeline.WritePNG(out, pipeline.ToRGBA(image), map[string]string{"parameters": params}); err != nil {
		return err
	}
	// The size and hash of what the disk now holds, which Check compares.
	if meta.ImageBytes, meta.ImageSHA256, err = hashFile(out); err != nil {
		return err
	}
	// The metadata goes last: with the image's size and hash, it marks the item finished.
	return pipeline.WriteJSON(filepath.Join(r.Out, filepath.FromSlash(metaRel)), meta)
}

// panicStack is where a recovered panic happened: the first few frames below
// the runtime's, one a line. It is called from the deferred function.
func panicStack() string {
	pc := make([]uintptr, 64)
	frames := runtime.CallersFrames(pc[:runtime.Callers(2, pc)])
	var b strings.Builder
	below := false
	for n := 0; n < 5; {
		f, more := frames.Next()
		if below && !strings.HasPrefix(f.Function, "runtime.") {
			fmt.Fprintf(&b, "\n\t%s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
			n++
		}
		below = below || f.Function == "runtime.gopanic"
		if !more {
			break
		}
	}
	return b.String()
}
