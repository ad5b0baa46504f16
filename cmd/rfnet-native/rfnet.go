package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// rfnetConfig is the configuration file (or the defaults) with the flags the user set on top.
func (g *generateFlags) rfnetSettings(fs *pflag.FlagSet) (rfnet.Config, error) {
	c := rfnet.Default()
	if g.rfnetConfig != "" {
		var err error
		if c, err = rfnet.LoadConfig(g.rfnetConfig); err != nil {
			return c, err
		}
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
		// The reference's batch seeds: background seed, foreground seeds from seed + 123456789.
		c.BgSeed, c.FgSeedStart = g.seed, g.seed+123456789
	}
	c.SAA = c.SAA && !g.noSAA
	c.GuidanceConstraint = c.GuidanceConstraint && !g.noGuidance
	c.Suppression = c.Suppression && !g.noSuppression
	c.SAACrossObject = c.SAACrossObject || g.saaCrossObject
	return c, c.Validate()
}

func (g *generateFlags) runRFNet(fs *pflag.FlagSet) error {
	if g.prompt == "" && g.plan == "" {
		return errors.New("--prompt (or --plan) is required")
	}
	for _, f := range []string{"init-latents", "save-latents", "save-text-embeddings", "negative-prompt"} {
		if fs.Changed(f) {
			return fmt.Errorf("--%s applies to --method sd (RFNet draws its own noise and negative prompts)", f)
		}
	}
	cfg, err := g.rfnetSettings(fs)
	if err != nil {
		return err
	}
	if err := checkOutputDir("--out-dir", g.outDir); err != nil {
		return err
	}
	if fs.Changed("out") {
		if err := checkOutputFile("--out", g.out); err != nil {
			return err
		}
	}
	var plan *llm.Plan
	if g.plan != "" {
		if plan, err = llm.ReadPlan(g.plan); err != nil {
			return err
		}
		if g.prompt != "" && g.prompt != plan.Prompt {
			fmt.Fprintf(os.Stderr, "rfnet-native: warning: --prompt %s differs from the plan's prompt %s; the plan is used\n", llm.Quote(g.prompt), llm.Quote(plan.Prompt))
		}
		plan.Source = &llm.Source{Planner: "file"}
		plan.Cap(g.llm.maxObjects)
	}
	start := time.Now()
	m, err := g.model.load()
	if err != nil {
		return err
	}
	defer m.Close()
	if err := rfnet.Validate(m, cfg); err != nil {
		return err
	}
	if plan == nil {
		if plan, err = g.llm.planner(os.Stderr).Plan(context.Background(), g.prompt); err != nil {
			return err
		}
	}
	for _, n := range plan.Notes {
		fmt.Fprintln(os.Stderr, "rfnet-native: plan:", n)
	}
	// The trace streams into trace.partial.jsonl; WriteArtifacts renames it
	// trace.jsonl with the rest of the run, so a failed run leaves an earlier
	// run's files as they were.
	trace, err := rfnet.OpenTrace(filepath.Join(g.outDir, rfnet.PartialTrace))
	if err != nil {
		return err
	}
	defer trace.Close()
	opts := rfnet.Options{Config: cfg, Trace: trace.Add}
	if !g.quiet {
		bar := newBar((len(plan.Objects)+1)*cfg.Steps, "rfnet")
		notice := newFirstStepNotice(os.Stderr, (len(plan.Objects)+1)*cfg.Steps, cfg.Width, m.Backend.Name(), cuda.Compiled)
		done := 0
		opts.Progress = func(stage string, object, step, total int) {
			notice.step()
			done++
			bar.Describe(fmt.Sprintf("rfnet %s", stageName(stage, object, len(plan.Objects))))
			bar.Set(done)
		}
		defer bar.Finish()
	}
	res, err := rfnet.Run(m, plan, opts)
	if err != nil {
		return fmt.Errorf("%w (the trace of this run is in %s)", err, trace.Path())
	}
	info := map[string]string{"weights": m.Path, "model_type": m.Variant.Name, "layout": m.Layout,
		"prediction": string(m.Variant.Sched.PredictionType), "device": m.Backend.Name(), "dtype": m.DType.String(), "version": version}
	ckpt, err := infotext.CheckpointOf(m)
	if err != nil {
		return err
	}
	if err := rfnet.WriteArtifacts(g.outDir, res, cfg, info, ckpt, trace); err != nil {
		return err
	}
	if fs.Changed("out") {
		params := rfnet.Parameters(res, cfg, ckpt).Format()
		if err := pipeline.WritePNG(g.out, pipeline.ToRGBA(res.Image), map[string]string{"parameters": params}); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "rfnet-native: wrote %s (%d objects, overall prompt %q) in %s\n", filepath.Join(g.outDir, "image.png"),
		len(res.Objects), res.OverallPrompt, time.Since(start).Round(time.Millisecond))
	return nil
}

func stageName(stage string, object, n int) string {
	if stage == "object" {
		return fmt.Sprintf("object %d/%d", object+1, n)
	}
	return stage
}
