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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/tensor"
)

// Run is a benchmark run's description, written to bench.json.
type Run struct {
	Version       int             `json:"version"`
	PromptsFile   string          `json:"prompts_file"`
	PromptsSHA256 string          `json:"prompts_sha256"`
	Methods       []string        `json:"methods"`
	Seeds         int             `json:"seeds"`
	Config        rfnet.Config    `json:"config"`
	Model         rfnet.ModelInfo `json:"model"`
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
	Model         rfnet.ModelInfo    `json:"model"`
	// SDXL records the refiner pass of an -sdxl method (the image is the
	// refined one; Width and Height are its size).
	SDXL *pipeline.RefineSidecar `json:"sdxl,omitempty"`
	// Artifacts are the files the item keeps beside its image (see
	// artifacts.go); none unless it was made with Runner.KeepArtifacts.
	Artifacts []ArtifactFile `json:"artifacts,omitempty"`
}

// Runner generates a benchmark's images into Out.
type Runner struct {
	Model   *pipeline.Model
	Planner llm.Planner
	Config  rfnet.Config // steps, size, guidance, scheduler and RFNet's hyperparameters
	Out     string
	Info    rfnet.ModelInfo // the model, hash included, for the sidecars
	Log     io.Writer
	// KeepArtifacts keeps each RFNet item's plan, masks, trace and the rest
	// of what rfnet.WriteArtifacts writes beside its image (see artifacts.go).
	KeepArtifacts bool
	// Progress is called after each item with the number done (skipped ones
	// included) and the total.
	Progress func(done, total int)
	// Timeline, when not nil, records each item generated (--profile-out).
	Timeline *timeline.Recorder
	// Profiled, when not nil, runs each item's image generation (and returns
	// its error): bench's --profile-kernels times the kernels there.
	Profiled func(generate func() error) error
	// SDXL is the refiner of the -sdxl methods (nil without them).
	SDXL *rfnet.SDXL
	// checkpoint names Model in the images' parameters text; it is hashed
	// for the first image generated, not before a run that may have none.
	checkpoint *infotext.Checkpoint
}

// modelCheckpoint is r.checkpoint, found the first time it is asked for.
func (r *Runner) modelCheckpoint() (infotext.Checkpoint, error) {
	if r.checkpoint == nil {
		c, err := infotext.CheckpointOf(r.Model)
		if err != nil {
			return c, err
		}
		r.checkpoint = &c
	}
	return *r.checkpoint, nil
}

// Summary counts what a Run or an Evaluate did.
type Summary struct {
	Generated, Skipped, Failed int
	// Failures lists the failed items, each as "key: why", in the order
	// they failed. Lasting is the part of them that a rerun does not get
	// past as things stand (see lasting): something must change first.
	Failures, Lasting []string
	// Broken lists the items that failed Check, each as "path: why": Run
	// generates them again (so they count in Generated or Failed too, and
	// in Redone or RedoFailed), Evaluate leaves them out.
	Broken             []string
	Redone, RedoFailed int
	// Busy lists the items Run left unfinished to the live processes that
	// had claimed them, each as "claim file (holder)".
	Busy []string
	// Recorded counts the items of an earlier version whose sidecar Run
	// completed with the image's size and hash.
	Recorded int
	// WithoutArtifacts counts the RFNet items that Run, keeping artifacts,
	// skipped as finished although they keep none: they were made without
	// KeepArtifacts, and their images are what a run keeping them would
	// make again.
	WithoutArtifacts int
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
		if s.WithoutArtifacts > 0 {
			r.logf("%d finished RFNet items were made without their artifacts kept and keep none; they are not made again "+
				"(remove an item's sidecar to make it again with its artifacts)", s.WithoutArtifacts)
		}
	}()
	// pass runs items and returns the ones another process held, with its claim.
	pass := func(items []Item, progress func(k int)) (held []Item, busy []string, err error) {
		for k, it := range items {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			b, err := r.runItem(ctx, it, &s)
			if err != nil {
				return nil, nil, err
			}
			if b != "" {
				held, busy = append(held, it), append(busy, b)
			}
			if progress != nil {
				progress(k)
			}
		}
		return held, busy, nil
	}
	var progress func(int)
	if r.Progress != nil {
		progress = func(k int) { r.Progress(k+1, len(items)) }
	}
	held, _, err := pass(items, progress)
	if err != nil {
		return s, err
	}
	_, s.Busy, err = pass(held, nil)
	return s, err
}

// runItem does one item and counts the outcome in s, except for an item
// another live process holds: then it returns the claim file and its holder.
// Only a cancelled context is returned as an error.
func (r *Runner) runItem(ctx context.Context, it Item, s *Summary) (busy string, err error) {
	imgRel, _ := itemPaths(it)
	if ok, _ := r.finished(it, s); ok {
		return "", nil
	}
	claimRel := strings.TrimSuffix(imgRel, ".png") + ".claim"
	claimPath := filepath.Join(r.Out, filepath.FromSlash(claimRel))
	os.MkdirAll(filepath.Dir(claimPath), 0o755) // on error, claim says why
	release, holder, err := claim(claimPath, r.Log)
	switch {
	case err != nil:
		r.fail(it, err, s)
		return "", nil
	case holder != nil:
		return fmt.Sprintf("%s (%s)", claimRel, holder), nil
	}
	defer release()
	// Checked again under the claim: another process may have finished the
	// item between the first check and the claim.
	broken := false
	if ok, err := r.finished(it, s); ok {
		return "", nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		broken = true
		s.Broken = append(s.Broken, err.Error())
		r.logf("%v: generating it again", err)
	}
	err = r.inTheWay(it)
	if err == nil {
		err = r.generate(ctx, it)
	}
	if err != nil {
		// An item stopped by the signal is not a failure: the next run makes it.
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		r.fail(it, err, s)
		if broken {
			s.RedoFailed++
		}
		return "", nil
	}
	s.Generated++
	if broken {
		s.Redone++
	}
	return "", nil
}

// inTheWay says what stands where the item's files go, if anything does: a
// folder, a named pipe or a device would refuse the write (see
// atomicfile.Destination) after the generation, so it fails the item before.
func (r *Runner) inTheWay(it Item) error {
	imgRel, metaRel := itemPaths(it)
	for _, rel := range []string{imgRel, metaRel} {
		fi, err := os.Stat(filepath.Join(r.Out, filepath.FromSlash(rel)))
		switch {
		case err != nil || fi.Mode().IsRegular():
		case fi.IsDir():
			return lastingError{fmt.Errorf("%s is a folder, where the item's file goes: move it away", rel)}
		default:
			return lastingError{fmt.Errorf("%s is a %s, where the item's file goes: move it away", rel, regular.Kind(fi.Mode()))}
		}
	}
	return nil
}

// lastingError marks a failure that running again does not get past until
// something changes (see lasting).
type lastingError struct{ error }

func (e lastingError) Unwrap() error { return e.error }

// fail counts and logs the failure of an item.
func (r *Runner) fail(it Item, err error, s *Summary) {
	why := fmt.Sprintf("%s: %v", it.Key(), err)
	s.Failed++
	s.Failures = append(s.Failures, why)
	if lasting(err) {
		s.Lasting = append(s.Lasting, why)
	}
	r.logf("%s failed: %v", it.Key(), err)
}

// lasting reports whether err is one that running bench again does not get
// past while things stay as they are: the file system refuses a name (too
// long, or a byte it does not take), bench may not write where it must, or a
// folder or file stands where an item's file or folder goes. Other failures
// (the planner's endpoint, device memory, a panic in one item) may pass on
// another try.
func lasting(err error) bool {
	if errors.As(err, new(lastingError)) {
		return true
	}
	for _, e := range []error{syscall.ENAMETOOLONG, syscall.EINVAL, syscall.EILSEQ, syscall.EROFS, syscall.EACCES,
		syscall.EPERM, syscall.EISDIR, syscall.ENOTDIR, syscall.ENOTEMPTY} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// finished reports whether the item it is finished and intact, and counts
// it as skipped; if not, err says why (see Check). Its sidecar must also
// describe it: one written for another seed, prompt or setting (edited, or
// copied in from another run) describes another image, and the item is
// broken. A sidecar of an earlier version gets the size and hash of its
// intact image written in.
func (r *Runner) finished(it Item, s *Summary) (ok bool, err error) {
	_, metaRel := itemPaths(it)
	c, err := check(r.Out, metaRel)
	if c.decoded {
		if diff := r.differences(c.meta, it); len(diff) > 0 {
			return false, fmt.Errorf("%s: %s", metaRel, strings.Join(diff, "; "))
		}
	}
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
	if m, _ := lookupMethod(it.Method); r.KeepArtifacts && !m.SD && len(c.meta.Artifacts) == 0 {
		s.WithoutArtifacts++
	}
	return true, nil
}

// differences lists what the sidecar m says that differs from the item it
// as this run makes it, each as "field, there, here".
func (r *Runner) differences(m Meta, it Item) []string {
	c := r.methodConfig(it)
	var out []string
	differ := func(field, there, here string) {
		if there != here {
			out = append(out, fmt.Sprintf("%s %s, this run's item has %s", field, there, here))
		}
	}
	differ("id", strconv.Quote(m.ID), strconv.Quote(it.Prompt.ID))
	differ("method", m.Method, it.Method)
	differ("seed", strconv.Itoa(m.Seed), strconv.Itoa(it.Seed))
	differ("bg_seed", strconv.FormatUint(m.BgSeed, 10), strconv.FormatUint(c.BgSeed, 10))
	differ("prompt", strconv.Quote(m.Prompt), strconv.Quote(it.Prompt.Prompt))
	differ("steps", strconv.Itoa(m.Steps), strconv.Itoa(c.Steps))
	differ("size", fmt.Sprintf("%d×%d", m.Width, m.Height), fmt.Sprintf("%d×%d", c.Width, c.Height))
	differ("guidance", strconv.FormatFloat(m.Guidance, 'g', -1, 64), strconv.FormatFloat(c.Guidance, 'g', -1, 64))
	differ("scheduler", strconv.Quote(m.Scheduler), strconv.Quote(c.Scheduler))
	return out
}

// plan returns the cached plan of a prompt, asking the planner the first time.
// A plan file that does not read (past MaxJSON, or one that does not decode)
// is asked for again and replaced; a pipe or a device there, which no file
// may replace, fails the item.
func (r *Runner) plan(ctx context.Context, p Prompt) (*llm.Plan, error) {
	path := filepath.Join(r.Out, "plans", p.ID+".json")
	if err := regular.Check(path); err != nil {
		return nil, lastingError{fmt.Errorf("%w: move it away", err)}
	}
	if plan, err := readPlan(path); err == nil {
		return plan, nil
	}
	span := r.Timeline.Begin("llm plan", "prompt", p.Prompt)
	plan, err := r.Planner.Plan(ctx, p.Prompt)
	if err == nil && plan.Source != nil {
		span.Set("planner", plan.Source.Planner, "model", plan.Source.Model, "cached", plan.Source.Cached)
	}
	span.End()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return plan, plan.Write(path)
}

// refine runs the SDXL refiner pass on an item's image and records it in meta.
func (r *Runner) refine(ctx context.Context, image *tensor.Tensor, caption, negative string, c rfnet.Config, meta *Meta) (*tensor.Tensor, infotext.Params, error) {
	if r.SDXL == nil {
		return nil, infotext.Params{}, fmt.Errorf("rfbench: method %s runs the SDXL refiner, and none is loaded (--sdxl-weights)", meta.Method)
	}
	q, err := rfnet.SDXLImageRequest(r.SDXL.Refiner, image, caption, negative, c, r.SDXL.Size)
	if err != nil {
		return nil, infotext.Params{}, err
	}
	q.Context = ctx
	start := time.Now()
	var res *pipeline.RefineResult
	err = r.profiled(func() (err error) {
		res, err = r.SDXL.Refiner.Refine(q)
		return err
	})
	if err != nil {
		return nil, infotext.Params{}, err
	}
	rec := pipeline.NewRefineSidecar(r.SDXL.Refiner, q, res, r.SDXL.Version)
	rec.Method, rec.Input, rec.Resized, rec.Weights = meta.Method, "the item's image before refinement", q.Image.Dim(3), r.SDXL.Weights
	rec.Seconds["refine"] = time.Since(start).Seconds()
	meta.Seconds["sdxl"] = rec.Seconds["refine"]
	meta.SDXL, meta.Width, meta.Height = &rec, rec.Width, rec.Height
	return res.Image, infotext.OfRefineSidecar(rec, r.SDXL.Checkpoint), nil
}

// methodConfig is the RFNet configuration of an item's method (see
// methods), with the item's seeds.
func (r *Runner) methodConfig(it Item) rfnet.Config {
	m, _ := lookupMethod(it.Method) // items come from ParseMethods
	return r.Config.WithSeed(it.BgSeed()).Without(m.Without)
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
	span := r.Timeline.Begin("bench item", "key", it.Key(), "method", it.Method, "seed", it.Seed)
	defer span.End()
	imgRel, metaRel := itemPaths(it)
	meta := Meta{ID: it.Prompt.ID, Area: it.Prompt.Area, Category: it.Prompt.Category, Prompt: it.Prompt.Prompt,
		Method: it.Method, Seed: it.Seed, BgSeed: c.BgSeed, Image: imgRel, Width: c.Width, Height: c.Height,
		Steps: c.Steps, Guidance: c.Guidance, Scheduler: c.Scheduler, Seconds: map[string]float64{}, Model: r.Info}
	ckpt, err := r.modelCheckpoint()
	if err != nil {
		return err
	}
	// Artifacts of an earlier image of the item, or half of them, go first:
	// the sidecar written last lists the artifacts of this image or none.
	if err := removeArtifacts(r.Out, it.Key()); err != nil {
		return err
	}
	start := time.Now()
	var image *tensor.Tensor
	var durations map[string]time.Duration
	var params infotext.Params
	if m, _ := lookupMethod(it.Method); m.SD {
		var res *pipeline.Result
		err := r.profiled(func() (err error) {
			res, err = r.Model.Generate(pipeline.Request{Prompt: it.Prompt.Prompt, Steps: c.Steps, Guidance: c.Guidance,
				Scheduler: c.Scheduler, Width: c.Width, Height: c.Height, Seed: c.BgSeed, Timeline: r.Timeline}, nil)
			return err
		})
		if err != nil {
			return err
		}
		image, durations = res.Image, res.Durations
		seed := c.BgSeed
		params = infotext.Params{Prompt: it.Prompt.Prompt, Steps: c.Steps, Scheduler: c.Scheduler, CFGScale: c.Guidance,
			Seed: &seed, Width: c.Width, Height: c.Height, Model: ckpt, Method: it.Method}
	} else {
		plan, err := r.plan(ctx, it.Prompt)
		if err != nil {
			return err
		}
		var res *rfnet.Result
		err = r.profiled(func() (err error) {
			opts := rfnet.Options{Config: c, Timeline: r.Timeline}
			if r.KeepArtifacts {
				res, meta.Artifacts, err = r.keepArtifacts(it, plan, opts, ckpt)
			} else {
				res, err = rfnet.Run(r.Model, plan, opts)
			}
			return err
		})
		if err != nil {
			return err
		}
		meta.Plan, meta.OverallPrompt = plan, res.OverallPrompt
		image, durations = res.Image, res.Durations
		params = rfnet.Parameters(res, c, ckpt)
		params.Method = it.Method // the ablation's name, as the image's folder has it
	}
	for k, d := range durations {
		meta.Seconds[k] = d.Seconds()
	}
	if m, _ := lookupMethod(it.Method); m.SDXL {
		caption, negative := it.Prompt.Prompt, ""
		if meta.Plan != nil {
			negative = meta.Plan.Negative
		}
		if image, params, err = r.refine(ctx, image, caption, negative, c, &meta); err != nil {
			return err
		}
		params.Method = it.Method
	}
	meta.Seconds["total"] = time.Since(start).Seconds()
	out := filepath.Join(r.Out, filepath.FromSlash(imgRel))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := pipeline.WritePNG(out, pipeline.ToRGBA(image), map[string]string{"parameters": params.Format()}); err != nil {
		return err
	}
	// The size and hash of what the disk now holds, which Check compares.
	if meta.ImageBytes, meta.ImageSHA256, err = hashFile(out); err != nil {
		return err
	}
	// The metadata goes last: with the image's size and hash, it marks the item finished.
	return pipeline.WriteJSON(filepath.Join(r.Out, filepath.FromSlash(metaRel)), meta)
}

// profiled runs generate through r.Profiled, when set.
func (r *Runner) profiled(generate func() error) error {
	if r.Profiled == nil {
		return generate()
	}
	return r.Profiled(generate)
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
