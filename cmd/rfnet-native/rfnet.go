package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/tensor"
)

// rfnetSettings is the configuration file (or the defaults) with the flags the user set on top.
func (g *generateFlags) rfnetSettings(fs *pflag.FlagSet) (rfnet.Config, error) {
	c := rfnet.Default()
	if g.rfnetConfig != "" {
		var err error
		if c, err = rfnet.LoadConfig(g.rfnetConfig); err != nil {
			return c, err
		}
	}
	if err := g.rfnet.apply(fs.Changed, &c); err != nil {
		return c, err
	}
	if err := g.sdxl.apply(fs.Changed, &c); err != nil {
		return c, err
	}
	if fs.Changed("steps") {
		c.Steps = g.steps
	}
	if fs.Changed("guidance") {
		c.Guidance = g.guidance
	}
	if fs.Changed("scheduler") {
		c.Scheduler = g.scheduler
	}
	if fs.Changed("width") {
		c.Width = g.width
	}
	if fs.Changed("height") {
		c.Height = g.height
	}
	if fs.Changed("seed") {
		c = c.WithSeed(g.seed)
	}
	c = c.Without(rfnet.Ablation{SAA: g.noSAA, Reference: g.noReference, Suppression: g.noSuppression})
	c.SAACrossObject = c.SAACrossObject || g.saaCrossObject
	return c, c.Validate()
}

func (g *generateFlags) runRFNet(fs *pflag.FlagSet) error {
	for _, f := range []string{"init-latents", "save-latents", "save-text-embeddings", "negative-prompt"} {
		if fs.Changed(f) {
			return fmt.Errorf("--%s applies to --method sd (RFNet draws its own noise and negative prompts)", f)
		}
	}
	if g.previewEvery < 0 {
		return fmt.Errorf("--preview-every %d: want 0 (no previews) or more", g.previewEvery)
	}
	cfg, err := g.rfnetSettings(fs)
	if err != nil {
		return err
	}
	if g.rfnet.printConfig {
		out, err := rfnet.ExplainedConfig(cfg)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	}
	if g.prompt == "" && g.plan == "" {
		return errors.New("--prompt (or --plan) is required")
	}
	runs, err := g.rfnetOutputs(fs.Changed, cfg)
	if err != nil {
		return err
	}
	tl := g.profile.recorder()
	return g.profile.write(tl, g.runRFNetBatch(cfg, runs, tl))
}

// runRFNetBatch makes the images of an RFNet batch; tl (may be nil) records it.
func (g *generateFlags) runRFNetBatch(cfg rfnet.Config, runs []rfnetOutput, tl *timeline.Recorder) error {
	var plan *llm.Plan
	var err error
	if g.plan != "" {
		if plan, err = llm.ReadPlan(g.plan); err != nil {
			return err
		}
		if plan.Prompt == "" {
			plan.Prompt = g.prompt // a layout need not carry its caption
		} else if g.prompt != "" && g.prompt != plan.Prompt {
			fmt.Fprintf(os.Stderr, "rfnet-native: warning: --prompt %s differs from the plan's prompt %s; the plan is used\n", llm.Quote(g.prompt), llm.Quote(plan.Prompt))
		}
		plan.Source = &llm.Source{Planner: "file"}
		plan.Cap(g.llm.maxObjects)
	}
	start := time.Now()
	m, err := g.loadModel(tl)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := rfnet.Validate(m, cfg); err != nil {
		return err
	}
	segmenter, err := g.rfnet.loadSAM(m.Backend, m.DType, g.model.offline, os.Stderr)
	if err != nil {
		return err
	}
	if !g.rfnet.allowV {
		if err := rfnet.CheckPrediction(m); err != nil {
			return fmt.Errorf("%w; --allow-v runs it anyway", err)
		}
	}
	if err := g.profile.checkKernels(m.Backend); err != nil {
		return err
	}
	if plan == nil {
		span := tl.Begin("llm plan", "prompt", g.prompt)
		plan, err = g.llm.planner(os.Stderr).Plan(context.Background(), g.prompt)
		if err == nil && plan.Source != nil {
			span.Set("planner", plan.Source.Planner, "model", plan.Source.Model, "cached", plan.Source.Cached)
		}
		span.End()
		if err != nil {
			return err
		}
	}
	for _, n := range plan.Notes {
		fmt.Fprintln(os.Stderr, "rfnet-native: plan:", n)
	}
	sdxl, closeSDXL, err := g.sdxl.load(context.Background(), m, g.model.offline)
	if err != nil {
		return err
	}
	defer closeSDXL()
	// The checkpoint's short hash (for the parameters text) is read once for
	// the batch.
	span := tl.Begin("checkpoint hash")
	ckpt, err := infotext.CheckpointOf(m)
	span.End()
	if err != nil {
		return err
	}
	perRun := (len(plan.Objects) + 1) * cfg.Steps
	if sdxl != nil {
		perRun += rfnet.SDXLStepsRun(cfg) // the refiner pass's steps count on the bar too
	}
	total := g.batchCount * perRun
	var bar *progressbar.ProgressBar
	var notice *firstStepNotice
	if !g.quiet {
		bar = newBar(total, "rfnet")
		notice = newFirstStepNotice(os.Stderr, total, cfg.Width, m.Backend.Name(), cuda.Compiled)
		defer bar.Finish()
	}
	done := 0
	for i, r := range runs {
		c := cfg
		// Both seeds move by i, so a config's own foreground start keeps its
		// distance from the background seed (WithSeed would reset it).
		c.BgSeed, c.FgSeedStart = cfg.BgSeed+uint64(i), cfg.FgSeedStart+uint64(i)
		opts := rfnet.Options{Config: c, AllowV: g.rfnet.allowV, PreviewEvery: g.previewEvery, Timeline: tl, SAM: segmenter}
		if bar != nil {
			opts.Progress = func(stage string, object, step, total int) {
				notice.step()
				done++
				bar.Describe(batchDescription("rfnet "+stageName(stage, object, len(plan.Objects)), i, g.batchCount))
				bar.Set(done)
			}
		}
		res, err := g.runRFNetOnce(m, ckpt, plan, opts, r, sdxl)
		if err != nil {
			return fmt.Errorf("%w%s", err, g.batchProgress(cfg.BgSeed, i))
		}
		if bar != nil {
			bar.Clear() // the line goes above the bar, which redraws on the next step
		}
		wrote := filepath.Join(r.dir, "image.png")
		if sdxl != nil {
			wrote += " and " + rfnet.SDXLImage
		}
		fmt.Fprintf(os.Stderr, "rfnet-native: wrote %s (%d objects, overall prompt %q, seed %d) in %s\n", wrote,
			len(res.Objects), res.OverallPrompt, c.BgSeed, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// rfnetOutput is where one run of an RFNet batch goes.
type rfnetOutput struct {
	dir, out string // out: "" without --out
}

// rfnetOutputs checks the out-dir and --out of every run of the batch
// before any model is loaded.
func (g *generateFlags) rfnetOutputs(changed func(string) bool, cfg rfnet.Config) ([]rfnetOutput, error) {
	if err := checkBatch(g.batchCount, cfg.BgSeed); err != nil {
		return nil, err
	}
	var runs []rfnetOutput
	var files []struct{ flag, path string }
	for i := 0; i < g.batchCount; i++ {
		seed := cfg.BgSeed + uint64(i)
		r := rfnetOutput{dir: batchDir(g.outDir, g.batchCount, seed)}
		if err := checkOutputDir("--out-dir", r.dir); err != nil {
			return nil, err
		}
		if changed("out") {
			r.out = batchFile(g.out, g.batchCount, seed)
			if err := checkOutputFile("--out", r.out); err != nil {
				return nil, err
			}
			files = append(files, struct{ flag, path string }{"--out", r.out})
		}
		runs = append(runs, r)
	}
	files = append(files, struct{ flag, path string }{"--profile-out", g.profile.out}) // "" when not given: skipped
	return runs, checkDistinct(files)
}

// runRFNetOnce makes one image of the batch and writes its out-dir (and
// --out's copy of the image); with sdxl (not nil) it refines the image,
// and --out's copy is the refined one.
func (g *generateFlags) runRFNetOnce(m *pipeline.Model, ckpt infotext.Checkpoint, plan *llm.Plan, opts rfnet.Options, r rfnetOutput, sdxl *rfnet.SDXL) (*rfnet.Result, error) {
	image := r.out
	if sdxl != nil {
		image = ""
	}
	res, err := rfnet.RunToDir(m, plan, opts, rfnet.Output{Dir: r.dir, Image: image, Version: version, Checkpoint: ckpt,
		Wrap: func(run func() error) error { return g.profile.run(m.Backend, opts.Timeline, run) }})
	if err != nil || sdxl == nil {
		return res, err
	}
	s := *sdxl
	if opts.Progress != nil {
		s.Progress = func(step, total int, _ *tensor.Tensor) { opts.Progress("sdxl refine", 0, step, total) }
	}
	span := opts.Timeline.Begin("sdxl refine", "out_dir", r.dir)
	_, err = rfnet.RefineToDir(s, r.dir, res, opts.Config, r.out)
	span.End()
	if err != nil {
		return nil, fmt.Errorf("%w (the unrefined run is in %s)", err, r.dir)
	}
	return res, nil
}

func stageName(stage string, object, n int) string {
	if stage == "object" {
		return fmt.Sprintf("object %d/%d", object+1, n)
	}
	return stage
}
