package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

type generateFlags struct {
	model                                        modelFlags
	llm                                          llmFlags
	method, prompt, negative, scheduler, out     string
	initLatents, saveLatents, saveTextEmbeddings string
	steps, width, height, batchCount             int
	guidance                                     float64
	seed                                         uint64
	quiet                                        bool
	// RFNet
	plan, outDir, rfnetConfig                         string
	noSAA, noReference, noSuppression, saaCrossObject bool
	rfnet                                             rfnetFlags
	sdxl                                              sdxlFlags
	previewEvery                                      int
	profile                                           profileFlags
}

func setupGenerate(fs *pflag.FlagSet) func() error {
	g := &generateFlags{}
	g.register(fs)
	return func() error { return g.run(fs) }
}

func (g *generateFlags) register(fs *pflag.FlagSet) {
	g.model.register(fs)
	fs.StringVar(&g.method, "method", "rfnet", "rfnet (LLM-planned layout, object-by-object generation and composition) or sd (plain Stable Diffusion)")
	fs.StringVar(&g.prompt, "prompt", "", "the text prompt")
	fs.StringVar(&g.negative, "negative-prompt", "", "the negative prompt (the unconditional branch of guidance)")
	fs.IntVar(&g.steps, "steps", 50, "denoising steps")
	fs.Float64Var(&g.guidance, "guidance", 7.5, "classifier-free guidance scale (1 or less: none)")
	fs.StringVar(&g.scheduler, "scheduler", "ddim", "scheduler: "+strings.Join(sched.Names(), ", "))
	fs.IntVar(&g.width, "width", 0, "image width, a multiple of 8 (default: the model's native size)")
	fs.IntVar(&g.height, "height", 0, "image height, a multiple of 8 (default: the model's native size)")
	fs.Uint64Var(&g.seed, "seed", 0, "noise seed (the same noise as diffusers with torch.Generator().manual_seed on the CPU)")
	fs.StringVar(&g.initLatents, "init-latents", "", "start from this .safetensors tensor \"latents\" [1,4,H/8,W/8] instead of --seed")
	fs.StringVar(&g.saveLatents, "save-latents", "", "write the initial latents (noise × init_noise_sigma) to this .safetensors file")
	fs.StringVar(&g.saveTextEmbeddings, "save-text-embeddings", "", "write the text embeddings \"cond\" and \"uncond\" to this .safetensors file")
	fs.IntVar(&g.batchCount, "batch-count", 1, "images to make, with seeds --seed, --seed+1, ... (the model is loaded once; with more than one, --out out.png writes out-<seed>.png and rfnet's --out-dir gets one seed-<seed>/ folder per image)")
	fs.StringVar(&g.out, "out", "out.png", "output PNG (a JSON sidecar with the parameters is written next to it)")
	fs.BoolVar(&g.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&g.plan, "plan", "", "rfnet: use this plan file instead of asking the LLM: a plan.json (from rfnet-native plan, or written by hand), LMD layout text or a GLIGEN layout (phrases and boxes)")
	fs.StringVar(&g.outDir, "out-dir", "rfnet-out", "rfnet: folder for the image, plan, layout, objects, masks, attention maps, SAA scores and trace")
	fs.StringVar(&g.rfnetConfig, "rfnet-config", "", "rfnet: JSON file of hyperparameters over the defaults (keys as in run.json's config)")
	fs.BoolVar(&g.noSAA, "no-saa", false, "rfnet ablation: no Semantic Alignment Assessment (main descriptions only)")
	fs.BoolVar(&g.noReference, "no-reference-constraint", false, "rfnet ablation: no reference constraint (each object's attention kept as in its own run)")
	// The flag's name until the reference constraint had its own word.
	fs.BoolVar(&g.noReference, "no-guidance-constraint", false, "the old name of --no-reference-constraint")
	fs.MarkDeprecated("no-guidance-constraint", "use --no-reference-constraint")
	fs.BoolVar(&g.noSuppression, "no-suppression-constraint", false, "rfnet ablation: no suppression constraint")
	fs.IntVar(&g.previewEvery, "preview-every", 0, "rfnet: decode the overall run's latent every K steps into the out-dir's preview.png, which index.html shows (0: none)")
	fs.BoolVar(&g.saaCrossObject, "saa-cross-object", false, "rfnet: choose descriptions by similarity across objects (the paper's prose) instead of per object (its code)")
	g.rfnet.register(fs)
	g.sdxl.register(fs)
	g.llm.register(fs)
	g.profile.register(fs)
}

func (g *generateFlags) run(fs *pflag.FlagSet) error {
	if err := g.check(fs.Changed); err != nil {
		return err
	}
	if err := g.profile.check(fs.Changed); err != nil {
		return err
	}
	switch g.method {
	case "rfnet":
		return g.runRFNet(fs)
	case "sd":
	default:
		return fmt.Errorf("--method %q: want rfnet or sd", g.method)
	}
	if g.prompt == "" {
		return errors.New("--prompt is required")
	}
	for _, f := range append([]string{"plan", "out-dir", "rfnet-config", "no-saa", "no-reference-constraint", "no-guidance-constraint", "no-suppression-constraint", "saa-cross-object", "preview-every", "offline-planner", "max-objects"}, append(g.rfnet.names(), g.sdxl.names()...)...) {
		if fs.Changed(f) {
			return fmt.Errorf("--%s applies to --method rfnet (plain SD plans nothing and writes --out)", f)
		}
	}
	if fs.Changed("seed") && g.initLatents != "" {
		return errors.New("--seed and --init-latents exclude each other")
	}
	outputs, err := g.sdOutputs(fs.Changed)
	if err != nil {
		return err
	}
	tl := g.profile.recorder()
	return g.profile.write(tl, g.runSD(outputs, tl))
}

// loadModel loads the checkpoint as a "load model" span of tl (may be nil).
func (g *generateFlags) loadModel(tl *timeline.Recorder) (*pipeline.Model, error) {
	span := tl.Begin("load model", "weights", g.model.weights)
	defer span.End()
	return g.model.load()
}

// runSD makes the images of a plain-SD batch; tl (may be nil) records it.
func (g *generateFlags) runSD(outputs []sdOutput, tl *timeline.Recorder) error {
	start := time.Now()
	m, err := g.loadModel(tl)
	if err != nil {
		return err
	}
	defer m.Close()
	loadTime := time.Since(start)
	if err := g.profile.checkKernels(m.Backend); err != nil {
		return err
	}
	req := pipeline.Request{Prompt: g.prompt, NegativePrompt: g.negative, Steps: g.steps, Guidance: g.guidance,
		Scheduler: g.scheduler, Width: g.width, Height: g.height, Seed: g.seed, Timeline: tl}
	if g.initLatents != "" {
		if req.InitLatents, err = readLatents(g.initLatents, m.Backend, m.DType); err != nil {
			return err
		}
	}
	if err := m.Validate(&req); err != nil {
		return err
	}
	// The checkpoint's short hash (for the parameters text) is read once for
	// the batch, before minutes of denoising.
	span := tl.Begin("checkpoint hash")
	checkpoint, err := infotext.CheckpointOf(m)
	span.End()
	if err != nil {
		return err
	}
	// One bar for the whole batch: the model is loaded once, and the images
	// follow each other with seeds --seed, --seed+1, ...
	var bar *progressbar.ProgressBar
	steps := len(mustSchedule(m, req).Timesteps())
	var notice *firstStepNotice
	if !g.quiet {
		bar = newBar(g.batchCount*steps, batchDescription("denoising", 0, g.batchCount))
		notice = newFirstStepNotice(os.Stderr, g.batchCount*steps, req.Width, m.Backend.Name(), cuda.Compiled)
	}
	for i, out := range outputs {
		r := req
		r.Seed = g.seed + uint64(i)
		var progress pipeline.Progress
		if bar != nil {
			done := i * steps
			bar.Describe(batchDescription("denoising", i, g.batchCount))
			progress = func(step, total int, _ *tensor.Tensor) {
				notice.step()
				bar.Set(done + step)
			}
		}
		var res *pipeline.Result
		err := g.profile.run(m.Backend, tl, func() (err error) {
			res, err = m.Generate(r, progress)
			return err
		})
		if err != nil {
			return fmt.Errorf("%w%s", err, g.batchProgress(g.seed, i))
		}
		if i == 0 {
			for _, w := range []struct {
				n    int
				what string
			}{{res.Truncated, "--prompt"}, {res.NegativeTruncated, "--negative-prompt"}} {
				if w.n > 0 {
					fmt.Fprintf(os.Stderr, "rfnet-native: warning: %s is %d tokens past the text encoder's 77-token window; the end was dropped\n", w.what, w.n)
				}
			}
		}
		span := tl.Begin("write image", "path", out.image)
		err = g.writeGenerated(m, checkpoint, r, res, loadTime, out)
		span.End()
		if err != nil {
			return fmt.Errorf("%w%s", err, g.batchProgress(g.seed, i))
		}
		if bar != nil {
			// The line goes above the bar, which redraws on the next step.
			bar.Clear()
			if i == len(outputs)-1 {
				bar.Finish()
			}
		}
		fmt.Fprintf(os.Stderr, "rfnet-native: wrote %s (%dx%d, %d steps, %s, seed %s) in %s\n", out.image, r.Width, r.Height, r.Steps,
			r.Scheduler, seedText(r, g.initLatents), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// sdOutput is where one image of a plain-SD batch goes.
type sdOutput struct {
	image, latents string // latents: "" without --save-latents
}

// sdOutputs checks every file the batch will write before any model is
// loaded: each image and its sidecar, each --save-latents file, and
// --save-text-embeddings (written once: the prompts are the batch's).
func (g *generateFlags) sdOutputs(changed func(string) bool) ([]sdOutput, error) {
	if err := checkBatch(g.batchCount, g.seed); err != nil {
		return nil, err
	}
	if g.batchCount > 1 && g.initLatents != "" {
		return nil, fmt.Errorf("--batch-count %d and --init-latents exclude each other (the file holds one image's noise)", g.batchCount)
	}
	var outputs []sdOutput
	var all []struct{ flag, path string }
	for i := 0; i < g.batchCount; i++ {
		seed := g.seed + uint64(i)
		o := sdOutput{image: batchFile(g.out, g.batchCount, seed)}
		if changed("save-latents") {
			o.latents = batchFile(g.saveLatents, g.batchCount, seed)
		}
		files := []struct{ flag, path string }{{"--out", o.image}, {"--out's JSON sidecar", pipeline.SidecarPath(o.image)}}
		if changed("save-latents") {
			files = append(files, struct{ flag, path string }{"--save-latents", o.latents})
		}
		for _, f := range files {
			if err := checkOutputFile(f.flag, f.path); err != nil {
				return nil, err
			}
			all = append(all, f)
		}
		outputs = append(outputs, o)
	}
	if changed("save-text-embeddings") {
		if err := checkOutputFile("--save-text-embeddings", g.saveTextEmbeddings); err != nil {
			return nil, err
		}
		all = append(all, struct{ flag, path string }{"--save-text-embeddings", g.saveTextEmbeddings})
	}
	all = append(all, struct{ flag, path string }{"--profile-out", g.profile.out}) // "" when not given: skipped
	return outputs, checkDistinct(all)
}

// writeGenerated writes what one image of the batch leaves: its latents
// (with --save-latents), the text embeddings (once, with the first image),
// then the PNG with its sidecar.
func (g *generateFlags) writeGenerated(m *pipeline.Model, checkpoint infotext.Checkpoint, r pipeline.Request, res *pipeline.Result, loadTime time.Duration, out sdOutput) error {
	if out.latents != "" {
		if err := weights.Save(out.latents, []weights.Entry{{Name: "latents", Tensor: res.InitLatents, DType: tensor.Float32}}, nil); err != nil {
			return err
		}
	}
	if g.saveTextEmbeddings != "" && r.Seed == g.seed {
		if err := weights.Save(g.saveTextEmbeddings, []weights.Entry{{Name: "cond", Tensor: res.Cond, DType: tensor.Float32},
			{Name: "uncond", Tensor: res.Uncond, DType: tensor.Float32}}, nil); err != nil {
			return err
		}
	}
	meta := pipeline.NewSidecar(m, r, res, version, g.initLatents, loadTime)
	return pipeline.WriteImage(out.image, res.Image, meta, infotext.OfSidecar(meta, checkpoint).Format())
}

// batchProgress tells, after a failure in image i of a batch whose first
// seed is first, which images were written before it.
func (g *generateFlags) batchProgress(first uint64, i int) string {
	if g.batchCount == 1 {
		return ""
	}
	if i == 0 {
		return fmt.Sprintf(" (image 1 of %d, seed %d; none written)", g.batchCount, first)
	}
	return fmt.Sprintf(" (image %d of %d, seed %d; images with seeds %d to %d were written)", i+1, g.batchCount, first+uint64(i), first, first+uint64(i)-1)
}

func seedText(r pipeline.Request, initLatents string) string {
	if initLatents != "" {
		return "from " + initLatents
	}
	return fmt.Sprint(r.Seed)
}

// newBar is the progress bar on stderr: steps done, speed, ETA.
func newBar(total int, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("step"), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
}

func mustSchedule(m *pipeline.Model, r pipeline.Request) sched.Scheduler {
	s, err := sched.New(r.Scheduler, m.Variant.Sched, r.Steps)
	if err != nil {
		panic(err) // Validate checked it
	}
	return s
}

// readLatents reads the tensor "latents" of a .safetensors file.
func readLatents(path string, b tensor.Backend, d tensor.DType) (*tensor.Tensor, error) {
	f, err := weights.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--init-latents: %w", err)
	}
	defer f.Close()
	t, err := f.Load(b, "latents", d)
	if err != nil {
		return nil, fmt.Errorf("--init-latents: %w (the file must hold a tensor named \"latents\")", err)
	}
	return t, nil
}
