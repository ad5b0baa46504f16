package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/metrics"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/randckpt"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// engineReport is what bench-engine measures, printed as a table and written as JSON.
type engineReport struct {
	Model   string        `json:"model"`
	Weights string        `json:"weights"`
	Device  string        `json:"device"`
	DType   string        `json:"dtype"`
	Latent  int           `json:"latent_size"`
	LoadS   float64       `json:"load_s"`
	Timer   string        `json:"timer"`
	Timings []stageTiming `json:"timings"`
}

// stageTiming is one measured call: the median and fastest of its runs
// after one warm-up, the FLOPs of its products and the rate they ran at
// over the median, and the device memory it peaked at (GPU only).
type stageTiming struct {
	Name     string  `json:"name"`
	MedianMS float64 `json:"median_ms"`
	MinMS    float64 `json:"min_ms"`
	Runs     int     `json:"runs"`
	GFLOP    float64 `json:"gflop"`
	TFLOPS   float64 `json:"tflops"`
	PeakMiB  float64 `json:"peak_mib,omitempty"`
	// HostMS is the median wall-clock time of the call's own code on the
	// host, without waiting for the device: close to MedianMS, the host's
	// launches are what the device waits for. GCPerRun counts Go garbage
	// collections, and Alloc the device allocator's driver allocations and
	// forced collections (GPU only), per timed run.
	HostMS   float64 `json:"host_ms"`
	GCPerRun float64 `json:"gc_per_run"`
	Alloc    *perRun `json:"alloc_per_run,omitempty"`
	// Profile is one more run's device time by kernel (--profile).
	Profile *cuda.KernelProfile `json:"profile,omitempty"`
}

// perRun is cuda.AllocStats averaged over a stage's timed runs.
type perRun struct {
	DriverAllocs float64 `json:"driver_allocs"`
	Collects     float64 `json:"collects"`
}

// allocStats is implemented by backends with a caching device allocator (cuda).
type allocStats interface{ AllocStats() cuda.AllocStats }

// memoryStats is implemented by backends that track device memory (cuda).
type memoryStats interface {
	MemoryStats() (inUse, peak int64)
	ResetPeak()
}

// eventTimer is implemented by backends that time on the device (cuda: CUDA events).
type eventTimer interface {
	Elapsed(f func() error) (ms float64, err error)
}

// kernelProfiler is implemented by backends that time each kernel (cuda).
type kernelProfiler interface {
	Profile(f func() error) (cuda.KernelProfile, error)
}

// profileTop is how many kernels the table shows per call (the JSON has all).
const profileTop = 15

func setupBenchEngine(fs *pflag.FlagSet) func() error {
	var m modelFlags
	m.register(fs)
	model := fs.String("model", "sd15", "with no --weights: random full-size weights in the layout of sd15 or sd21 (built in memory)")
	size := fs.Int("size", 0, "latent size (0: the model's native size, 64 for 512×512)")
	iters := fs.Int("iters", 5, "timed runs of each call after one warm-up")
	steps := fs.Int("steps", 50, "DDIM steps of the denoising-loop measurement; with --refiner the schedule the refinement runs 0.3 of (0 skips either)")
	out := fs.String("json", "", "also write the report as JSON to this file")
	profile := fs.Bool("profile", false, "after timing each call (but the denoising loop), run it once more with every kernel timed and print where the device time went (--device cuda)")
	samOn := fs.Bool("sam", false, "time SAM (random full-size sam-vit-base weights, or --weights: a SamModel folder or Hub name) instead of Stable Diffusion: its image encoder, prompt encoder and mask decoder, and one object's whole segmentation")
	refinerOn := fs.Bool("refiner", false, "time the SDXL refiner (random full-size weights, or --weights) instead of Stable Diffusion: its text encoder, one UNet call at a --size latent (default 128, 1024×1024) and with --steps a refinement at strength 0.3 (int(0.3·steps) steps; needs --tokenizer on random weights)")
	var scenes rfnetBenchFlags
	scenes.register(fs)
	return func() error {
		if chosen := *samOn && *refinerOn || (*samOn || *refinerOn) && (scenes.on || fs.Changed("model")); chosen {
			return errors.New("--sam, --refiner, --rfnet and --model each choose what bench-engine times: give one")
		}
		if *samOn && fs.Changed("size") {
			return errors.New("--size does not apply to --sam: SAM's encoder takes one size (its config's image_size, 1024 for sam-vit-base)")
		}
		if scenes.on {
			for _, f := range []string{"iters", "profile"} {
				if fs.Changed(f) {
					return fmt.Errorf("--%s applies to the single calls; --rfnet runs each scene once", f)
				}
			}
			return benchScenes(&m, scenes, *model, *size, *steps, *out)
		}
		if *iters < 1 {
			return fmt.Errorf("--iters %d: want at least 1", *iters)
		}
		b, d, err := m.backend()
		if err != nil {
			return err
		}
		var prof kernelProfiler
		if *profile {
			var ok bool
			if prof, ok = b.(kernelProfiler); !ok {
				return fmt.Errorf("--profile times GPU kernels; %s has none (use --device cuda)", b.Name())
			}
		}
		r := engineReport{Model: *model, Device: b.Name(), DType: d.String(), Timer: "wall clock after Sync"}
		if _, ok := b.(eventTimer); ok {
			r.Timer = "CUDA events"
		}
		e := engineBench{dev: b, counter: tensor.CountFLOPs(b), dtype: d, prof: prof, size: *size, iters: *iters, steps: *steps, start: time.Now()}
		switch {
		case *samOn:
			err = benchSAM(&r, &m, e)
		case *refinerOn:
			err = benchRefiner(&r, &m, e)
		default:
			err = benchSD(&r, &m, e, *model)
		}
		if err != nil {
			return err
		}
		printEngineReport(r)
		if *out != "" {
			raw, _ := json.MarshalIndent(r, "", "  ")
			return atomicfile.WriteBytes(*out, append(raw, '\n'))
		}
		return nil
	}
}

// engineBench is what every bench-engine model shares: the backend the calls
// are timed on (dev) and the FLOP counter wrapping it that models load onto,
// the dtype, the profiler (--profile) and the run counts.
type engineBench struct {
	dev          tensor.Backend
	counter      *tensor.FLOPCounter
	dtype        tensor.DType
	prof         kernelProfiler
	size         int // the latent's side, 0 for the model's own
	iters, steps int
	start        time.Time // when loading began
}

// loaded records the load time in r, once the device has finished it.
func (e engineBench) loaded(r *engineReport) error {
	if err := e.dev.Sync(); err != nil {
		return err
	}
	r.LoadS = time.Since(e.start).Seconds()
	return nil
}

// benchSD times Stable Diffusion's calls (random --model, or --weights) into r.
func benchSD(r *engineReport, m *modelFlags, e engineBench, model string) error {
	var mdl *pipeline.Model
	var err error
	if m.weights == "" {
		// Random full-size weights built in memory: no checkpoint, no disk.
		if mdl, err = randomModel(model, m.modelType, m.tokenizer, e.counter, e.dtype); err != nil {
			return loadFlagError(err)
		}
		r.Weights = "random " + model + " (in memory)"
	} else {
		path, o, err := m.options(context.Background(), e.counter, e.dtype)
		if err != nil {
			return err
		}
		// The calls' token ids are fixed: the tokenizer (a folder's own,
		// or --tokenizer) serves only the guidance pass's prompts, which a
		// checkpoint without one goes without.
		mdl, err = pipeline.Load(path, o)
		if errors.Is(err, pipeline.ErrNoTokenizer) {
			o.NoTokenizer = true
			mdl, err = pipeline.Load(path, o)
		}
		if err != nil {
			return loadFlagError(err)
		}
		defer mdl.Close()
		r.Weights, r.Model = path, mdl.Variant.Name
	}
	if err := e.loaded(r); err != nil {
		return err
	}
	r.Latent = e.size
	if r.Latent == 0 {
		r.Latent = mdl.Variant.Width / 8
	}
	r.Timings, err = benchStages(mdl, e.dev, e.counter, e.prof, r.Latent, e.iters, e.steps)
	return err
}

// randomModel builds model (sd15 or sd21, the latter as SD 2.1-base unless
// modelType says otherwise) from random half-precision weights in the
// released single-file layout, generated in memory; with a tokenizer (a
// tokenizer/ folder or vocabulary file) it can encode prompts, without one
// only token ids.
func randomModel(model, modelType, tokenizer string, b tensor.Backend, d tensor.DType) (*pipeline.Model, error) {
	man, err := randckpt.ReadSingleFile(model + "-single-file")
	if err != nil {
		return nil, fmt.Errorf("--model %q: want sd15 or sd21 (%v)", model, err)
	}
	if modelType == "" && model == "sd21" {
		modelType = "sd21-base"
	}
	fmt.Fprintf(os.Stderr, "building random %s weights in memory\n", model)
	raw, err := randckpt.Bytes(man, 1)
	if err != nil {
		return nil, err
	}
	f, err := weights.FromBytes("random "+model, raw)
	if err != nil {
		return nil, err
	}
	return pipeline.LoadFile(f, pipeline.LoadOptions{ModelType: modelType, Backend: b, DType: d, Tokenizer: tokenizer, NoTokenizer: tokenizer == ""})
}

// benchStages times the calls a generation is made of. The model runs on
// counter (which wraps dev) so that the warm-up run of each call counts its
// FLOPs. With prof, each call but the denoising loop (its steps are UNet
// calls) runs once more, profiled.
func benchStages(m *pipeline.Model, dev tensor.Backend, counter *tensor.FLOPCounter, prof kernelProfiler, size, iters, steps int) ([]stageTiming, error) {
	b, d := m.Backend, m.DType
	tokens := benchTokens(b, m.Variant.Text.VocabSize)
	var ctx *tensor.Tensor
	encode := func() error { ctx = m.Text.Encode(tokens).To(d); return nil }
	encode() // ctx for the other calls
	z := m.Noise(1, 8*size, 8*size, 1)
	z2 := tensor.Concat(0, z, z)
	// The step as the denoising loop runs it: the text's cross-attention
	// keys and values projected once, before the loop.
	ctx2 := m.UNet.PrepareContext(tensor.Concat(0, ctx, ctx))
	defer ctx2.Free()

	stages := []benchStage{
		{name: "text encoder (1×77 tokens)", runs: iters, profile: true, f: encode},
		{name: fmt.Sprintf("unet, batch 2 (CFG step), %d² latent", size), runs: iters, profile: true, f: func() error {
			_, err := m.UNet.ForwardContext(z2, []float64{500, 500}, ctx2, nil, nil)
			return err
		}},
	}
	stages = append(stages, guidanceStages(m, dev, iters, size)...)
	stages = append(stages, benchStage{name: fmt.Sprintf("vae decode to %d²", 8*size), runs: iters, profile: true, f: func() error { m.DecodeImage(z); return nil }})
	// The same call captured once and replayed, as the denoising loop runs
	// it after its first step, where the backend captures (CUDA graphs; not
	// with RFNET_CUDA_GRAPHS=0, which leaves the row out). Captured in its
	// setup and released when done, so that its graph counts in no other
	// row's peak memory. Not profiled: a profile refuses capture.
	if tensor.Captures(b) {
		proj := m.UNet.TimeProjection(b, d, []float64{500, 500})
		defer proj.Free()
		var call *tensor.Call
		replay := benchStage{name: fmt.Sprintf("graph replay of the unet call, batch 2, %d² latent", size), runs: iters,
			setup: func() error {
				var err error
				call, _, err = tensor.CaptureCall(b, func(in []*tensor.Tensor) *tensor.Tensor {
					out, err := m.UNet.ForwardProjected(in[0], in[1], ctx2)
					if err != nil {
						panic(fmt.Sprintf("bench-engine: unet call to capture: %v", err))
					}
					return out
				}, z2, proj)
				if errors.Is(err, tensor.ErrUnsupported) {
					return fmt.Errorf("%w: %v", errSkipStage, err)
				}
				return err
			},
			f: func() error {
				out, err := call.Run(z2, proj)
				if err == nil {
					out.Free()
				}
				return err
			},
			done: func() { call.Close() }}
		stages = append(stages[:2], append([]benchStage{replay}, stages[2:]...)...)
	}
	if steps > 0 {
		stages = append(stages, benchStage{name: fmt.Sprintf("denoise: %d DDIM steps with CFG", steps), runs: 1, f: func() error {
			s, err := sched.New("ddim", m.Variant.Sched, steps)
			if err != nil {
				return err
			}
			_, err = m.Denoise(nil, s, z, ctx, ctx, 7.5, nil, nil)
			return err
		}})
	}
	return timeStages(dev, counter, prof, stages)
}

// guidanceStages are RFNet's guidance pass (rfnet.GuidanceBench: the first
// object's single-object run of bench-engine --rfnet's one-object plan, at
// its first step, with its box loss) as the timed calls: eager (op by op,
// profiled); where the backend captures, replayed as the runs replay it
// (the record's guidance row); and where it has two paths for the
// convolutions' input gradient, eager on the other (im2col + col2im here,
// the GPU's implicit GEMM by default), side by side in the same run. Each
// stage prepares its pass in its setup and releases it when done, so the
// captured one's graph counts in its own row's peak memory alone. Its
// prompts need the model's tokenizer: without one (random weights and no
// --tokenizer) there are none, and bench-engine says so.
func guidanceStages(m *pipeline.Model, dev tensor.Backend, iters int, size int) []benchStage {
	if m.Tokenizer == nil {
		fmt.Fprintln(os.Stderr, "bench-engine: no rfnet guidance pass: its prompts need a tokenizer (--tokenizer)")
		return nil
	}
	c := rfnet.Default()
	c.Width, c.Height = 8*size, 8*size
	// stage is the stage name of a pass; with replay, the pass runs as the
	// runs' do, eager then captured, both in the setup, so that every timed
	// run replays (left out where the backend does not capture).
	stage := func(name string, replay bool, around func() func()) benchStage {
		var g *rfnet.GuidanceBench
		return benchStage{name: name, runs: iters, profile: !replay,
			setup: func() error {
				var err error
				if g, err = rfnet.NewGuidanceBench(m, benchPlan(1), c, !replay); err != nil || !replay {
					return err
				}
				for range 2 {
					if err := g.Run(); err != nil {
						return err
					}
				}
				if !g.Captured() {
					return fmt.Errorf("%w: the backend runs the pass eagerly", errSkipStage)
				}
				return nil
			},
			f: func() error {
				if around != nil {
					defer around()()
				}
				return g.Run()
			},
			done: func() {
				if g != nil {
					g.Close()
				}
			}}
	}
	stages := []benchStage{stage("rfnet guidance pass, eager (box loss, backward to the latent)", false, nil)}
	// Not profiled: a profile refuses capture.
	if tensor.Captures(m.Backend) {
		stages = append(stages, stage(replayedGuidance, true, nil))
	}
	// Its name does not start as the eager pass's.
	if p, ok := dev.(conv2dPather); ok {
		stages = append(stages, stage("im2col-gradient guidance pass, eager (RFNET_CONV=im2col)", false, func() func() {
			was := p.SetConv2dPath(cuda.ConvIm2col)
			return func() { p.SetConv2dPath(was) }
		}))
	}
	return stages
}

// conv2dPather is a backend with two paths for a convolution's input
// gradient (cuda.Backend).
type conv2dPather interface {
	SetConv2dPath(cuda.Conv2dPath) (was cuda.Conv2dPath)
}

// benchTokens is a fixed prompt of 77 token ids for a vocabulary of vocab:
// CLIP's special tokens are its last two ids, so <start> a mouse <end>, then
// <end> as padding (SD 1.x's; the cost is the same whatever the ids).
func benchTokens(b tensor.Backend, vocab int) *tensor.Tensor {
	v := int32(vocab)
	ids := make([]int32, 77)
	for i := range ids {
		ids[i] = v - 1
	}
	ids[0], ids[1], ids[2] = v-2, 320%(v-2), 3077%(v-2)
	return tensor.FromInt32(b, tensor.Shape{1, 77}, ids)
}

// benchStage is one call bench-engine times: runs timed runs after one
// warm-up, and one more profiled run under --profile if profile.
type benchStage struct {
	name    string
	runs    int
	profile bool
	f       func() error
	// setup, when set, runs before the stage's warm-up and done after its
	// runs (or after a failed setup), so that what the stage holds (a
	// captured graph) counts in its own peak memory and in no other
	// stage's; setup's errSkipStage leaves the stage out.
	setup func() error
	done  func()
}

// errSkipStage is a stage's setup saying the stage cannot run here.
var errSkipStage = errors.New("bench-engine: stage left out")

// timeStages times each stage on dev: the one timing loop of bench-engine's
// single calls (SD, SAM and the refiner). The calls run on counter (which
// wraps dev) so that each warm-up run counts its FLOPs; with prof, stages
// marked profile run once more, profiled.
func timeStages(dev tensor.Backend, counter *tensor.FLOPCounter, prof kernelProfiler, stages []benchStage) ([]stageTiming, error) {
	var out []stageTiming
	mem, _ := dev.(memoryStats)
	for _, s := range stages {
		if s.setup != nil {
			if err := s.setup(); err != nil {
				if s.done != nil { // what the setup made before it failed
					s.done()
				}
				if !errors.Is(err, errSkipStage) {
					return nil, fmt.Errorf("%s: %w", s.name, err)
				}
				fmt.Fprintf(os.Stderr, "not timing %s: %v\n", s.name, err)
				continue
			}
		}
		t, err := timeStage(dev, counter, prof, mem, s)
		if s.done != nil {
			s.done()
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// timeStage is one stage of timeStages, after its setup.
func timeStage(dev tensor.Backend, counter *tensor.FLOPCounter, prof kernelProfiler, mem memoryStats, s benchStage) (stageTiming, error) {
	fmt.Fprintf(os.Stderr, "timing %s\n", s.name)
	// Warm-up (kernel lookups, the allocator's cache, cuBLAS heuristics), counting FLOPs.
	counter.Reset()
	if _, err := timeCall(dev, s.f); err != nil {
		return stageTiming{}, fmt.Errorf("%s: %w", s.name, err)
	}
	flops := counter.FLOPs()
	if mem != nil {
		mem.ResetPeak()
	}
	var ms, host []float64
	as, _ := dev.(allocStats)
	var before cuda.AllocStats
	if as != nil {
		before = as.AllocStats()
	}
	gcBefore := gcCycles()
	for range s.runs {
		var h time.Duration
		t, err := timeCall(dev, func() error {
			start := time.Now()
			err := s.f()
			h = time.Since(start)
			return err
		})
		if err != nil {
			return stageTiming{}, fmt.Errorf("%s: %w", s.name, err)
		}
		ms, host = append(ms, t), append(host, float64(h.Microseconds())/1000)
	}
	slices.Sort(ms)
	slices.Sort(host)
	n := float64(len(ms))
	t := stageTiming{Name: s.name, MedianMS: ms[len(ms)/2], MinMS: ms[0], Runs: len(ms), GFLOP: float64(flops) / 1e9,
		HostMS: host[len(host)/2], GCPerRun: float64(gcCycles()-gcBefore) / n}
	if as != nil {
		after := as.AllocStats()
		t.Alloc = &perRun{DriverAllocs: float64(after.DriverAllocs-before.DriverAllocs) / n, Collects: float64(after.Collects-before.Collects) / n}
	}
	t.TFLOPS = float64(flops) / (t.MedianMS / 1e3) / 1e12
	if mem != nil {
		_, peak := mem.MemoryStats()
		t.PeakMiB = float64(peak) / (1 << 20)
	}
	if prof != nil && s.profile {
		p, err := prof.Profile(s.f)
		if err != nil {
			return stageTiming{}, fmt.Errorf("%s: profile: %w", s.name, err)
		}
		t.Profile = &p
	}
	return t, nil
}

// gcCycles is the number of Go garbage collections so far (runtime/metrics:
// cheap, no stop of the world as runtime.ReadMemStats).
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// timeCall runs f once and returns its milliseconds: by device events where
// the backend has them, else by the wall clock up to Sync.
func timeCall(b tensor.Backend, f func() error) (float64, error) {
	if et, ok := b.(eventTimer); ok {
		return et.Elapsed(f)
	}
	start := time.Now()
	if err := f(); err != nil {
		return 0, err
	}
	if err := b.Sync(); err != nil {
		return 0, err
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}

func printEngineReport(r engineReport) {
	latent := "" // SAM has none
	if r.Latent > 0 {
		latent = fmt.Sprintf(", latent %d² (%d×%d)", r.Latent, 8*r.Latent, 8*r.Latent)
	}
	fmt.Printf("model %s (%s), %s, %s%s, load %.1f s, timed by %s\n",
		r.Model, r.Weights, r.Device, r.DType, latent, r.LoadS, r.Timer)
	fmt.Printf("%-72s %10s %10s %5s %9s %8s %9s\n", "call", "median ms", "min ms", "runs", "GFLOP", "TFLOP/s", "peak MiB")
	for _, t := range r.Timings {
		peak := "-"
		if t.PeakMiB > 0 {
			peak = fmt.Sprintf("%.0f", t.PeakMiB)
		}
		fmt.Printf("%-72s %10.1f %10.1f %5d %9.1f %8.2f %9s\n", t.Name, t.MedianMS, t.MinMS, t.Runs, t.GFLOP, t.TFLOPS, peak)
	}
	// The host side of each call: when host ms is close to the median, the
	// device waits for launches; driver allocations and forced collections
	// in a steady state mean the allocator's cache misses.
	fmt.Printf("\n%-72s %10s %10s %14s %10s\n", "host side, per run", "host ms", "Go GCs", "driver allocs", "collects")
	for _, t := range r.Timings {
		da, co := "-", "-"
		if t.Alloc != nil {
			da, co = fmt.Sprintf("%.1f", t.Alloc.DriverAllocs), fmt.Sprintf("%.1f", t.Alloc.Collects)
		}
		fmt.Printf("%-72s %10.1f %10.1f %14s %10s\n", t.Name, t.HostMS, t.GCPerRun, da, co)
	}
	for _, t := range r.Timings {
		if t.Profile != nil {
			// Two event records per launch make a profiled run a little slower than the timed ones.
			fmt.Printf("\nprofile of one %s (%d kernels; profiling slows it a little: the shares matter)\n", t.Name, len(t.Profile.Kernels))
			t.Profile.Write(os.Stdout, profileTop)
		}
	}
}
