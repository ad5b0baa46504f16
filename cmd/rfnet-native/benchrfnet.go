package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/tensor"
)

// rfnetReport is what bench-engine --rfnet measures: whole RFNet scenes.
type rfnetReport struct {
	Model   string  `json:"model"`
	Weights string  `json:"weights"`
	Device  string  `json:"device"`
	DType   string  `json:"dtype"`
	Width   int     `json:"width"`
	Height  int     `json:"height"`
	Steps   int     `json:"steps"`
	LoadS   float64 `json:"load_s"`
	// Config is the --rfnet-config file the scenes ran under ("" for the defaults).
	Config string `json:"rfnet_config"`
	// BatchObjects says whether the single-object runs ran as one batch
	// (batch_objects): then a single-object guidance pass is one batched
	// pass of all the objects still steering.
	BatchObjects bool `json:"batch_objects"`
	// Peak says what peak_mib measures: the device allocator's peak, or the
	// process's peak resident set on the CPU (weights included).
	Peak   string        `json:"peak"`
	Scenes []sceneTiming `json:"scenes"`
}

// sceneTiming is one scene under one setting, run once after the warm-up.
// The stages are disjoint and add up to the scene but for OtherMS (the
// scheduler set-ups, the starting noise and the finite checks between the
// stages' spans).
type sceneTiming struct {
	Objects int     `json:"objects"`
	Setting string  `json:"setting"` // default or forced
	SceneMS float64 `json:"scene_ms"`
	// PromptsMS is SAA and the text encoder; ObjectsMS the single-object
	// runs (denoising and their guidance passes, without their masks and
	// decodes); MasksMS the masks, their alignment and the composition;
	// OverallMS the overall run (denoising and its guidance passes);
	// DecodeMS every VAE decode (the objects' pictures, the scene, the
	// composed latent's picture).
	PromptsMS float64 `json:"prompts_ms"`
	ObjectsMS float64 `json:"single_object_runs_ms"`
	MasksMS   float64 `json:"masks_and_composition_ms"`
	OverallMS float64 `json:"overall_run_ms"`
	DecodeMS  float64 `json:"decode_ms"`
	OtherMS   float64 `json:"other_ms"`
	// ObjectGuidance and OverallGuidance are the guidance passes (steering
	// iterations) inside the single-object runs and the overall run (a
	// batched pass, all the objects still steering at once, counts once);
	// GuidanceMedianMS is the median pass of both.
	ObjectGuidance   passStats `json:"single_object_guidance"`
	OverallGuidance  passStats `json:"overall_guidance"`
	GuidanceMedianMS float64   `json:"guidance_median_ms"`
	// IterationsPerRun are the guidance passes of each run: the
	// single-object runs in the plan's order, then the overall run.
	IterationsPerRun []int   `json:"iterations_per_run"`
	PeakMiB          float64 `json:"peak_mib"`
}

// passStats are a stage's guidance passes.
type passStats struct {
	Count    int     `json:"count"`
	TotalMS  float64 `json:"total_ms"`
	MedianMS float64 `json:"median_ms"`
}

// rfnetBenchFlags are bench-engine's --rfnet flags.
type rfnetBenchFlags struct {
	on                bool
	objects, settings string
	config            string
}

func (f *rfnetBenchFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.on, "rfnet", false, "time whole RFNet scenes (built-in plans, no LLM) instead of the single calls; --size and --steps set the scene (default 512×512, 50 steps)")
	fs.StringVar(&f.objects, "objects", "1,2,4", "--rfnet: the scenes, by their number of objects (1 to 4)")
	fs.StringVar(&f.settings, "rfnet-setting", "default,forced", "--rfnet: default (the loss gating of the config) and/or forced (loss thresholds 0: every iteration of the schedule)")
	fs.StringVar(&f.config, "rfnet-config", "", "--rfnet: JSON file of RFNet hyperparameters over the defaults (any key of run.json's config; --size and --steps win)")
}

// parse checks the flags that shape the scenes.
func (f *rfnetBenchFlags) parse() (objects []int, settings []string, err error) {
	for _, s := range strings.Split(f.objects, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > len(benchObjects) {
			return nil, nil, fmt.Errorf("--objects %q: want numbers of objects from 1 to %d, comma-separated", f.objects, len(benchObjects))
		}
		objects = append(objects, n)
	}
	for _, s := range strings.Split(f.settings, ",") {
		s = strings.TrimSpace(s)
		if s != "default" && s != "forced" {
			return nil, nil, fmt.Errorf("--rfnet-setting %q: want default, forced or both, comma-separated", f.settings)
		}
		settings = append(settings, s)
	}
	return objects, settings, nil
}

// benchObjects are the built-in plans' objects, the first n in a scene of n.
var benchObjects = []llm.Object{
	{Name: "a cat", Descriptions: []string{"sleeping", "curled up", "with striped fur"}},
	{Name: "a dog", Descriptions: []string{"sitting", "wagging its tail", "with a red collar"}},
	{Name: "a ball", Descriptions: []string{"made of leather", "worn", "half in the grass"}},
	{Name: "a lamp", Descriptions: []string{"made of brass", "glowing", "on a stand"}},
}

// benchLayouts are the boxes [x, y, w, h] on llm.Canvas of a scene of n
// objects (index n-1): boxes that do not overlap, so masks and composition
// are those of a plan an LLM would write.
var benchLayouts = [][][4]float64{
	{{160, 160, 192, 192}},
	{{32, 160, 208, 208}, {272, 160, 208, 208}},
	{{16, 176, 152, 152}, {180, 176, 152, 152}, {344, 176, 152, 152}},
	{{32, 32, 200, 200}, {280, 32, 200, 200}, {32, 280, 200, 200}, {280, 280, 200, 200}},
}

// benchPlan is the built-in plan of a scene of n objects in a garden.
func benchPlan(n int) *llm.Plan {
	p := &llm.Plan{Background: "a sunny garden", Source: &llm.Source{Planner: "bench-engine"}}
	var names []string
	for i := range n {
		o := benchObjects[i]
		o.Box = benchLayouts[n-1][i]
		p.Objects = append(p.Objects, o)
		names = append(names, o.Name)
	}
	p.Prompt = strings.Join(names, " and ") + " in a sunny garden"
	return p
}

// benchScenes is bench-engine --rfnet: the model on random full-size weights
// (or --weights), the config with --size and --steps over it, and every
// scene under every setting.
func benchScenes(m *modelFlags, f rfnetBenchFlags, model string, size, steps int, out string) error {
	objects, settings, err := f.parse()
	if err != nil {
		return err
	}
	if steps < 1 {
		return fmt.Errorf("--steps %d: --rfnet needs 1 or more", steps)
	}
	if m.weights == "" && m.tokenizer == "" {
		return errors.New("--rfnet on random weights needs --tokenizer (a tokenizer/ folder or bpe_simple_vocab_16e6.txt.gz: prompts are 77 tokens whatever the vocabulary, so any works)")
	}
	cfg := rfnet.Default()
	if f.config != "" {
		if cfg, err = rfnet.LoadConfig(f.config); err != nil {
			return err
		}
	}
	b, d, err := m.backend()
	if err != nil {
		return err
	}
	r := rfnetReport{Device: b.Name(), DType: d.String(), Config: f.config, Peak: newPeakMeter(b).kind}
	start := time.Now()
	var mdl *pipeline.Model
	if m.weights == "" {
		if mdl, err = randomModel(model, m.modelType, m.tokenizer, b, d); err != nil {
			return loadFlagError(err)
		}
		r.Weights = "random " + model + " (in memory)"
	} else {
		path, o, err := m.options(context.Background(), b, d)
		if err != nil {
			return err
		}
		if mdl, err = pipeline.Load(path, o); err != nil {
			return loadFlagError(err)
		}
		defer mdl.Close()
		r.Weights = path
	}
	if err := b.Sync(); err != nil {
		return err
	}
	r.LoadS, r.Model = time.Since(start).Seconds(), mdl.Variant.Name
	if size == 0 {
		size = mdl.Variant.Width / 8
	}
	cfg.Steps, cfg.Width, cfg.Height = steps, 8*size, 8*size
	if err := rfnet.Validate(mdl, cfg); err != nil {
		return err
	}
	if err := rfnet.CheckPrediction(mdl); err != nil {
		return err
	}
	r.Width, r.Height, r.Steps, r.BatchObjects = cfg.Width, cfg.Height, cfg.Steps, cfg.BatchObjects
	if r.Scenes, err = benchRFNet(mdl, cfg, objects, settings); err != nil {
		return err
	}
	printRFNetReport(r)
	if out != "" {
		raw, _ := json.MarshalIndent(r, "", "  ")
		return atomicfile.WriteBytes(out, append(raw, '\n'))
	}
	return nil
}

// benchRFNet runs each scene under each setting once, after a short warm-up
// scene (kernel lookups, the allocator's cache, cuBLAS heuristics).
func benchRFNet(m *pipeline.Model, cfg rfnet.Config, objects []int, settings []string) ([]sceneTiming, error) {
	warm := cfg
	warm.Steps = min(cfg.Steps, 2)
	fmt.Fprintf(os.Stderr, "warm-up: a 1-object scene of %d steps\n", warm.Steps)
	if _, err := rfnet.Run(m, benchPlan(1), rfnet.Options{Config: warm}); err != nil {
		return nil, fmt.Errorf("warm-up scene: %w", err)
	}
	peak := newPeakMeter(m.Backend)
	var out []sceneTiming
	for _, n := range objects {
		for _, setting := range settings {
			c := cfg
			if setting == "forced" {
				c.LossThreshold, c.OverallLossThreshold = 0, 0
			}
			fmt.Fprintf(os.Stderr, "timing the %d-object scene, %s setting\n", n, setting)
			tl := timeline.New()
			peak.reset()
			res, err := rfnet.Run(m, benchPlan(n), rfnet.Options{Config: c, Timeline: tl})
			if err == nil {
				err = m.Backend.Sync()
			}
			if err != nil {
				return nil, fmt.Errorf("%d-object scene, %s setting: %w", n, setting, err)
			}
			s := sceneStages(tl.Spans(), res.Durations)
			s.Objects, s.Setting, s.PeakMiB = n, setting, peak.mib()
			out = append(out, s)
		}
	}
	return out, nil
}

// sceneStages derives a scene's stages from its run's timeline (spans as
// rfnet.Run records them) and, for the one decode without a span (the
// composed latent's picture), its Durations: the one place that knows which
// span makes which stage. On a GPU a span ends when its host code returns;
// every denoising step syncs and every guidance pass reads its loss, so those
// are whole, while a VAE decode's device time lands in the finite check after
// it (inside a single-object run, or other_ms for the scene's).
//
// The single-object runs are one "object" span each (batch_objects false),
// or one "objects" span for them all (the batch), holding the denoising
// steps and the steering iterations, with an "object" span inside it per
// object for its mask and picture only. A batched steering iteration is one
// guidance pass of every object it lists.
func sceneStages(spans []timeline.SpanRecord, durations map[string]time.Duration) sceneTiming {
	// within is the innermost enclosing span of one of names, -1 if none.
	within := func(i int, names ...string) int {
		for p := spans[i].Parent; p >= 0; p = spans[p].Parent {
			if slices.Contains(names, spans[p].Name) {
				return p
			}
		}
		return -1
	}
	var s sceneTiming
	var objectPasses, overallPasses []float64
	runOf := map[int]int{} // span index of a run -> its place (the batch's first) in IterationsPerRun
	var runs []int
	for i, sp := range spans {
		ms := sp.Seconds * 1e3
		switch sp.Name {
		case "rfnet":
			s.SceneMS += ms
		case "prompts":
			s.PromptsMS += ms
		case "objects":
			s.ObjectsMS += ms
			runOf[i] = len(runs)
			runs = append(runs, make([]int, intArg(sp.Args["batch"]))...)
		case "object":
			if within(i, "objects") >= 0 {
				continue // a batched object's finishing work, inside the batch's time
			}
			s.ObjectsMS += ms
			runOf[i] = len(runs)
			runs = append(runs, 0)
		case "overall":
			s.OverallMS += ms
			runOf[i] = len(runs)
			runs = append(runs, 0)
		case "mask and alignment", "compose":
			s.MasksMS += ms
			// Inside the run that it follows: not that run's time.
			if within(i, "object", "objects") >= 0 {
				s.ObjectsMS -= ms
			} else if within(i, "overall") >= 0 {
				s.OverallMS -= ms
			}
		case "vae decode":
			s.DecodeMS += ms
			if within(i, "object", "objects") >= 0 {
				s.ObjectsMS -= ms
			}
		case "steering iteration":
			run := within(i, "object", "objects", "overall")
			if run < 0 {
				continue
			}
			switch spans[run].Name {
			case "objects":
				for _, j := range intsArg(sp.Args["objects"]) {
					if k := runOf[run] + j; j >= 0 && k < len(runs) {
						runs[k]++
					}
				}
				objectPasses = append(objectPasses, ms)
			case "object":
				runs[runOf[run]]++
				objectPasses = append(objectPasses, ms)
			default:
				runs[runOf[run]]++
				overallPasses = append(overallPasses, ms)
			}
		}
	}
	s.DecodeMS += float64(durations["pictures"].Microseconds()) / 1e3
	s.OtherMS = s.SceneMS - (s.PromptsMS + s.ObjectsMS + s.MasksMS + s.OverallMS + s.DecodeMS)
	s.ObjectGuidance, s.OverallGuidance = passesOf(objectPasses), passesOf(overallPasses)
	s.GuidanceMedianMS = median(append(objectPasses, overallPasses...))
	s.IterationsPerRun = runs
	return s
}

// intArg is a span's integer argument (an int as recorded, a float64 as
// JSON reads it back), 0 when it is neither.
func intArg(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}

// intsArg is a span's list of integers ([]int as recorded, []any as JSON
// reads it back).
func intsArg(v any) []int {
	switch l := v.(type) {
	case []int:
		return l
	case []any:
		out := make([]int, len(l))
		for i, e := range l {
			out[i] = intArg(e)
		}
		return out
	}
	return nil
}

func passesOf(ms []float64) passStats {
	p := passStats{Count: len(ms), MedianMS: median(ms)}
	for _, v := range ms {
		p.TotalMS += v
	}
	return p
}

// median of ms (0 for none), without reordering it.
func median(ms []float64) float64 {
	if len(ms) == 0 {
		return 0
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	return s[len(s)/2]
}

// peakDevice is rfnetReport.Peak on a backend that tracks device memory.
const peakDevice = "device allocator peak"

// peakMeter measures a scene's peak memory: the device allocator's where the
// backend tracks it, else the process's peak resident set (Linux: VmHWM,
// reset through /proc/self/clear_refs), else nothing.
type peakMeter struct {
	mem  memoryStats // nil on the CPU
	kind string
}

func newPeakMeter(b tensor.Backend) peakMeter {
	if mem, ok := b.(memoryStats); ok {
		return peakMeter{mem: mem, kind: peakDevice}
	}
	if _, err := os.Stat("/proc/self/clear_refs"); err == nil {
		return peakMeter{kind: "process peak RSS (VmHWM, weights included)"}
	}
	return peakMeter{kind: "none"}
}

func (p peakMeter) reset() {
	if p.mem != nil {
		p.mem.ResetPeak()
		return
	}
	// "5" resets the peak resident set to the current one (proc(5)).
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// mib is the peak since reset in MiB, 0 when unknown.
func (p peakMeter) mib() float64 {
	if p.mem != nil {
		_, peak := p.mem.MemoryStats()
		return float64(peak) / (1 << 20)
	}
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

func printRFNetReport(r rfnetReport) {
	objects := "one by one"
	if r.BatchObjects {
		objects = "as one batch"
	}
	fmt.Printf("rfnet scenes: model %s (%s), %s, %s, %d×%d, %d steps, objects %s, load %.1f s; peak: %s\n",
		r.Model, r.Weights, r.Device, r.DType, r.Width, r.Height, r.Steps, objects, r.LoadS, r.Peak)
	fmt.Printf("%-8s %-8s %10s %9s %11s %13s %9s %10s %13s %9s %8s %10s %9s %s\n", "objects", "setting", "scene ms", "prompts",
		"object runs", "their guid.", "masks", "overall", "its guid.", "decode", "other", "guid. med", "peak MiB", "iterations per run")
	for _, s := range r.Scenes {
		fmt.Printf("%-8d %-8s %10.1f %9.1f %11.1f %13s %9.1f %10.1f %13s %9.1f %8.1f %10.1f %9.0f %v\n", s.Objects, s.Setting, s.SceneMS, s.PromptsMS,
			s.ObjectsMS, passCell(s.ObjectGuidance), s.MasksMS, s.OverallMS, passCell(s.OverallGuidance), s.DecodeMS, s.OtherMS, s.GuidanceMedianMS, s.PeakMiB, s.IterationsPerRun)
	}
	fmt.Println("(guid.: guidance passes, their count in their ms, part of the run before them; ms are milliseconds of one run after a warm-up)")
}

func passCell(p passStats) string { return fmt.Sprintf("%d in %.0f", p.Count, p.TotalMS) }
