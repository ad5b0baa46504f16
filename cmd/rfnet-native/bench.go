package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/judge"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/report"
	"github.com/rfnet/rfnet-native/rfbench"
)

// interruptible is a context cancelled by Ctrl-C or SIGTERM (a Kubernetes pod
// being stopped), so runs stop between items and release what they hold. A
// second signal kills the process at once.
func interruptible() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// interruptedError is the error of a command stopped by Ctrl-C or SIGTERM.
// Its message says so, where the bare context error would say "context
// canceled"; it wraps context.Canceled for callers that branch on it.
type interruptedError struct{ msg string }

func (e *interruptedError) Error() string { return e.msg }
func (*interruptedError) Unwrap() error   { return context.Canceled }

func interrupted(msg string) error { return &interruptedError{msg} }

// Caps on the flags that size what a command holds in memory. bench lists
// its items (prompts × methods × seeds, about 100 bytes each) before it
// starts, and eval runs one goroutine per request with an image in it.
const (
	// maxSeeds: the paper uses 1 to 4 seeds; 1000 seeds of the default
	// prompt set and all eight methods are 1.9 million items (about 190 MB
	// listed), and months of GPU time.
	maxSeeds = 1000
	// maxConcurrency: endpoints limit requests per minute far below this;
	// past it, requests only wait in 429 retries.
	maxConcurrency = 256
)

// checkFolder refuses a flag's folder that names something other than a
// folder; one that does not exist is left to the command, which makes it or
// says it is missing. what is the kind of folder wanted ("a run folder").
func checkFolder(flag, path, what string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil || fi.IsDir():
		return nil
	case fi.Mode().IsRegular():
		return fmt.Errorf("%s %s is a file, not %s", flag, path, what)
	}
	return fmt.Errorf("%s %s is a %s, not %s", flag, path, regular.Kind(fi.Mode()), what)
}

func setupBench(fs *pflag.FlagSet) func() error {
	var model modelFlags
	var lf llmFlags
	model.register(fs)
	lf.register(fs)
	prompts := fs.String("prompts", "", "prompt file, JSONL or CSV with id, area, category, prompt (default: the built-in 234-prompt set)")
	methods := fs.String("methods", "sd,rfnet", "comma-separated: "+strings.Join(rfbench.MethodNames(), ", ")+" (see --list-methods)")
	listMethods := fs.Bool("list-methods", false, "print the methods, each with what it turns off, and exit")
	seeds := fs.Int("seeds", 1, "images per prompt and method")
	out := fs.String("out", "bench-run", "run folder (finished images are kept and skipped; processes with the same settings share it)")
	shard := fs.String("shard", "0/1", "run part i of n (0-based), for several machines")
	limit := fs.Int("limit", 0, "only the first K prompts (0: all)")
	steps := fs.Int("steps", 0, "denoising steps (default: the RFNet config's, 50)")
	size := fs.Int("size", 0, "image width and height, a multiple of 8 (default: the RFNet config's, 512)")
	cfgFile := fs.String("rfnet-config", "", "JSON file of RFNet hyperparameters")
	keepArtifacts := fs.Bool("keep-artifacts", false, "keep each RFNet item's plan, masks, trace and the rest of an --out-dir "+
		"in images/<method>/<id>-s<seed>/ beside its image (sd items have none to keep)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	sdxlWeights := fs.String("sdxl-weights", "", "the SDXL refiner of the -sdxl methods: a diffusers folder or a Hub name such as sdxl-refiner (required with them)")
	sdxlSize := fs.Int("sdxl-size", rfnet.SDXLSize, "the side the -sdxl methods resize the image to before refining; the published run's is 1024")
	var profile profileFlags
	profile.register(fs)
	return func() (err error) {
		if *listMethods {
			return rfbench.ListMethods(os.Stdout)
		}
		// Everything is checked before the model loads, which takes minutes
		// for a real checkpoint. Changed tells an explicit 0 from the default.
		switch {
		case *out == "":
			return errors.New("bench: --out is required")
		case *seeds < 1:
			return fmt.Errorf("bench: --seeds %d: want at least 1", *seeds)
		case *seeds > maxSeeds:
			return fmt.Errorf("bench: --seeds %d: want at most %d", *seeds, maxSeeds)
		case *limit < 0:
			return fmt.Errorf("bench: --limit %d: want a number of prompts, or 0 for all", *limit)
		case fs.Changed("steps") && *steps < 1:
			return fmt.Errorf("bench: --steps %d: want at least 1", *steps)
		}
		if fs.Changed("size") {
			if err := pipeline.CheckSide("--size", *size); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
		}
		if err := checkFolder("--out", *out, "a run folder"); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := lf.check(); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := profile.check(fs.Changed); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		ps := rfbench.DefaultPrompts()
		source := "built-in"
		if *prompts != "" {
			var err error
			if ps, err = rfbench.LoadPrompts(*prompts); err != nil {
				return err
			}
			source = *prompts
		}
		if *limit > 0 && *limit < len(ps) {
			ps = ps[:*limit]
		}
		ms, err := rfbench.ParseMethods(*methods, os.Stderr)
		if err != nil {
			return err
		}
		if rfbench.NeedsRefiner(ms) {
			if *sdxlWeights == "" {
				return fmt.Errorf("bench: --methods %s: the -sdxl methods need --sdxl-weights (the SDXL refiner: a diffusers folder, or a Hub name such as sdxl-refiner)", *methods)
			}
			if err := pipeline.CheckSide("--sdxl-size", *sdxlSize); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
		} else if fs.Changed("sdxl-weights") || fs.Changed("sdxl-size") {
			return fmt.Errorf("bench: --sdxl-weights and --sdxl-size apply to the -sdxl methods (see --list-methods), and --methods %s has none", *methods)
		}
		sh, err := rfbench.ParseShard(*shard)
		if err != nil {
			var bad *rfbench.ShardError
			if errors.As(err, &bad) {
				return fmt.Errorf("bench: --shard %q: %w", bad.Shard, bad.Err)
			}
			return err
		}
		cfg := rfnet.Default()
		if *cfgFile != "" {
			if cfg, err = rfnet.LoadConfig(*cfgFile); err != nil {
				return err
			}
		}
		if fs.Changed("steps") {
			cfg.Steps = *steps
		}
		if fs.Changed("size") {
			cfg.Width, cfg.Height = *size, *size
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		// Signals are caught from here on, so that the lock is released: the
		// deferred release runs on every return below, a download stopped by
		// a signal included.
		ctx, stop := interruptible()
		defer stop()
		release, err := rfbench.Lock(*out, rfbench.Settings{PromptsSHA256: rfbench.PromptsHash(ps), Config: cfg}, os.Stderr)
		if err != nil {
			return outFlagError(*out, err)
		}
		defer release()
		tl := profile.recorder()
		defer func() { err = profile.write(tl, err) }()
		span := tl.Begin("load model", "weights", model.weights)
		m, err := model.loadContext(ctx)
		span.End()
		if err != nil {
			if ctx.Err() != nil {
				return interrupted("bench: interrupted while loading the model")
			}
			return err
		}
		defer m.Close()
		if ctx.Err() != nil {
			return interrupted("bench: interrupted after loading the model")
		}
		// Steps against the scheduler, the size and memory: a setting the
		// model cannot run fails here once, not once per item.
		if err := rfnet.Validate(m, cfg); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if rfbench.NeedsPlanner(ms) { // an RFNet method on a v model
			if err := rfnet.CheckPrediction(m); err != nil {
				return fmt.Errorf("bench: %w (--methods sd runs plain SD on it)", err)
			}
		}
		if err := profile.checkKernels(m.Backend); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		span = tl.Begin("checkpoint hash")
		hash, err := m.Hash()
		span.End()
		if err != nil {
			return err
		}
		info := rfnet.DescribeModel(m, version)
		info.Hash = hash
		if err := rfbench.Start(*out, rfbench.Run{Version: 1, PromptsFile: source, PromptsSHA256: rfbench.PromptsHash(ps),
			Methods: ms, Seeds: *seeds, Config: cfg, Model: info}); err != nil {
			return outFlagError(*out, err)
		}
		items := sh.Select(rfbench.Items(ps, ms, *seeds))
		r := &rfbench.Runner{Model: m, Config: cfg, Out: *out, Info: info, Log: os.Stderr, KeepArtifacts: *keepArtifacts, Timeline: tl,
			Profiled: func(generate func() error) error { return profile.run(m.Backend, tl, generate) }}
		if rfbench.NeedsPlanner(ms) {
			r.Planner = advisedPlanner{lf.planner(os.Stderr), fs}
		}
		if rfbench.NeedsRefiner(ms) {
			sdxl := sdxlFlags{on: true, weights: *sdxlWeights, size: *sdxlSize}
			var closeSDXL func()
			if r.SDXL, closeSDXL, err = sdxl.load(ctx, m, model.offline); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			defer closeSDXL()
		}
		if !*quiet {
			bar := newBar(len(items), "bench")
			r.Progress = func(done, total int) { bar.Set(done) }
			defer bar.Finish()
		}
		s, err := r.Run(ctx, items)
		generated := fmt.Sprintf("%d generated", s.Generated)
		if s.Redone > 0 {
			generated += fmt.Sprintf(" (%d of them broken and made again)", s.Redone)
		}
		failed := fmt.Sprintf("%d failed", s.Failed)
		if s.Failed > 0 {
			var about []string
			if s.RedoFailed > 0 {
				about = append(about, fmt.Sprintf("%d of them broken and not made again", s.RedoFailed))
			}
			failed += fmt.Sprintf(" (%s)", strings.Join(append(about, "the first: "+firstLine(s.Failures[0])), "; "))
		}
		line := fmt.Sprintf("shard %d/%d: %s, %d already done, %s", sh.I, sh.N, generated, s.Skipped, failed)
		if len(s.Busy) > 0 {
			line += fmt.Sprintf(", %d left to other processes", len(s.Busy))
		}
		fmt.Fprintf(os.Stderr, "rfnet-native: bench: %s (%s)\n", line, *out)
		if err != nil {
			if ctx.Err() != nil {
				return interrupted("bench: interrupted; the items done are kept, and the same command makes the rest")
			}
			return err
		}
		var problems []string
		if n := s.Failed - len(s.Lasting); n > 0 {
			problems = append(problems, fmt.Sprintf("%d items failed (run the same command again to retry them)", n))
		}
		if n := len(s.Lasting); n > 0 {
			problems = append(problems, fmt.Sprintf("%d items failed in a way that running again does not fix as things stand (the first: %s): "+
				"fix that, then run the same command again", n, firstLine(s.Lasting[0])))
		}
		if len(s.Busy) > 0 {
			problems = append(problems, fmt.Sprintf("%d items are not finished: other processes hold their claims (%s); "+
				"those processes finish them, and if they are gone, their claims are stale once not refreshed for %s and "+
				"running the same command again makes them", len(s.Busy), firstFew(s.Busy), rfbench.StaleAfter))
		}
		if len(problems) > 0 {
			return errors.New("bench: " + strings.Join(problems, "; "))
		}
		return nil
	}
}

// firstLine is a failure's reason for a summary: its first line (a panic's
// reason comes with a stack, which the log has).
func firstLine(reason string) string {
	line, _, _ := strings.Cut(reason, "\n")
	return line
}

// firstFew is a list for a summary line: its first three entries and how
// many more there are.
func firstFew(list []string) string {
	const n = 3
	if len(list) <= n {
		return strings.Join(list, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(list[:n], "; "), len(list)-n)
}

// outFlagError names --out in an error about the run folder out holding, or
// being in use by, another run: rfbench names the folder, not the flag.
func outFlagError(out string, err error) error {
	if errors.Is(err, rfbench.ErrOtherRun) {
		return fmt.Errorf("--out %s: %w", out, err)
	}
	return err
}

func setupBenchMerge(fs *pflag.FlagSet) func() error {
	out := fs.String("out", "", "the merged run folder")
	return func() error {
		if *out == "" || fs.NArg() == 0 {
			return errors.New("bench merge: usage: rfnet-native bench merge --out DIR SHARD_DIR...")
		}
		if err := checkFolder("--out", *out, "a run folder"); err != nil {
			return fmt.Errorf("bench merge: %w", err)
		}
		n, err := rfbench.Merge(*out, fs.Args(), os.Stderr)
		if err != nil {
			return outFlagError(*out, err)
		}
		fmt.Fprintf(os.Stderr, "rfnet-native: bench merge: %d items, %d plans and %d judge results copied into %s, %d files left out (each named above)\n",
			n.Items, n.Plans, n.Results, *out, n.Skipped)
		return nil
	}
}

func setupEval(fs *pflag.FlagSet) func() error {
	var model modelFlags
	model.register(fs)
	d := llm.DefaultConfig()
	run := fs.String("run", "", "the benchmark run folder")
	judgeName := fs.String("judge", "gpt4score", "gpt4score or gpt4clip")
	judgeModel := fs.String("judge-model", "gpt-4o", "the vision model at the endpoint")
	baseURL := fs.String("llm-base-url", "", "OpenAI-compatible API base URL (default $OPENAI_BASE_URL)")
	apiKey := fs.String("llm-api-key", "", "API key (default $OPENAI_API_KEY)")
	timeout := fs.Duration("llm-timeout", d.Timeout, "timeout of one judge request")
	retries := fs.Int("llm-retries", d.Retries, "retries of a request that timed out or got 429/5xx (exponential backoff)")
	reasoningTokens := fs.Int("llm-reasoning-tokens", d.ReasoningTokens, reasoningTokensUsage)
	concurrency := fs.Int("concurrency", 4, "requests at a time")
	cache := fs.String("judge-cache", defaultJudgeCache(), "folder of cached judge answers (empty: none)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	return func() error {
		switch {
		case *run == "":
			return errors.New("eval: --run is required")
		case *judgeName != "gpt4score" && *judgeName != "gpt4clip":
			return fmt.Errorf("eval: --judge %q: want gpt4score or gpt4clip", *judgeName)
		case *concurrency < 1:
			return fmt.Errorf("eval: --concurrency %d: want at least 1", *concurrency)
		case *concurrency > maxConcurrency:
			return fmt.Errorf("eval: --concurrency %d: want at most %d", *concurrency, maxConcurrency)
		}
		if err := checkFolder("--run", *run, "a run folder"); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		if *cache != "" {
			if err := checkFolder("--judge-cache", *cache, "a folder"); err != nil {
				return fmt.Errorf("eval: %w", err)
			}
		}
		if err := checkLLMTransport(*timeout, *retries, *reasoningTokens); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		c := d
		c.Model, c.Log, c.ReasoningTokens = *judgeModel, os.Stderr, *reasoningTokens
		c.Timeout, c.Retries = *timeout, *retries
		if *baseURL != "" {
			c.BaseURL = *baseURL
		}
		if *apiKey != "" {
			c.APIKey = *apiKey
		}
		if !c.Configured() {
			return errors.New("eval: no judge endpoint: set OPENAI_API_KEY (or --llm-base-url for a local vision server)")
		}
		if _, err := rfbench.ReadRun(*run); err != nil {
			return err
		}
		jc := judge.Config{Chat: c, CacheDir: *cache}
		var j judge.Judge = judge.NewGPT4Score(jc)
		if *judgeName == "gpt4clip" {
			m, err := modelForRun(&model, *run)
			if err != nil {
				return err
			}
			defer m.Close()
			j = judge.NewGPT4CLIP(jc, m.TextFeature)
		}
		var progress func(int, int)
		if !*quiet {
			bar := newBar(0, "eval "+*judgeName)
			progress = func(done, total int) { bar.ChangeMax(total); bar.Set(done) }
			defer bar.Finish()
		}
		ctx, stop := interruptible()
		defer stop()
		s, err := rfbench.Evaluate(ctx, *run, advisedJudge{j, fs}, *concurrency, progress)
		line := fmt.Sprintf("%d judged, %d already judged, %d failed", s.Generated, s.Skipped, s.Failed)
		if len(s.Failures) > 0 {
			line += fmt.Sprintf(" (the first: %s)", firstLine(s.Failures[0]))
		}
		if len(s.Broken) > 0 {
			line += fmt.Sprintf(", %d broken and not judged (%s)", len(s.Broken), firstFew(s.Broken))
		}
		fmt.Fprintf(os.Stderr, "rfnet-native: eval %s: %s\n", *judgeName, line)
		if err != nil {
			if ctx.Err() != nil {
				return interrupted("eval: interrupted; the results written are kept, and running eval again judges the rest")
			}
			return err
		}
		var problems []string
		if s.Failed > 0 {
			problems = append(problems, fmt.Sprintf("%d items failed (recorded as failed in %s/eval/%s; run eval again to retry them)", s.Failed, *run, *judgeName))
		}
		if len(s.Broken) > 0 {
			problems = append(problems, fmt.Sprintf("%d items are broken and were not judged (%s; bench with the run's settings generates them again)", len(s.Broken), firstFew(s.Broken)))
		}
		if len(problems) > 0 {
			return errors.New("eval: " + strings.Join(problems, "; "))
		}
		return nil
	}
}

// modelForRun loads the checkpoint whose text encoder GPT4-CLIP uses: --weights,
// or the one bench.json names.
func modelForRun(model *modelFlags, run string) (*pipeline.Model, error) {
	if model.weights == "" {
		info, err := rfbench.ReadRun(run)
		if err != nil {
			return nil, err
		}
		model.weights = info.Model.Weights
	}
	return model.load()
}

func defaultJudgeCache() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return dir + "/rfnet-native/judge"
	}
	return ""
}

func setupReport(fs *pflag.FlagSet) func() error {
	run := fs.String("run", "", "the benchmark run folder")
	out := fs.String("out", "", "the HTML file (default: report.html in the run folder)")
	return func() error {
		if *run == "" {
			return errors.New("report: --run is required")
		}
		if err := checkFolder("--run", *run, "a run folder"); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		path := *out
		if path == "" {
			path = *run + "/report.html"
		}
		if err := report.Write(*run, path); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "rfnet-native: report:", path)
		return nil
	}
}
