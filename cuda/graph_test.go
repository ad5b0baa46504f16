//go:build cuda

package cuda_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// graphsOn turns capture on for the test (another test may have turned it off).
func graphsOn(t *testing.T, g tensor.Backend) *cuda.Backend {
	t.Helper()
	b := g.(*cuda.Backend)
	was := b.SetGraphs(true)
	t.Cleanup(func() { b.SetGraphs(was) })
	return b
}

// A captured call of a few ops (elementwise, a GEMM, a reduction, a concat)
// replayed with new inputs equals the eager call bit for bit; the steady
// replays take nothing from the driver, and Close gives every block back
// (all but cuBLAS's workspace, which MemoryStats counts once it is there).
func TestGraphReplaysOps(t *testing.T) {
	g := device(t)
	graphsOn(t, g)
	mem := g.(interface {
		MemoryStats() (inUse, peak int64)
		AllocStats() cuda.AllocStats
	})
	for _, d := range computeDTypes {
		t.Run(d.String(), func(t *testing.T) {
			f := func(in []*tensor.Tensor) *tensor.Tensor {
				x, w := in[0], in[1]
				h := x.Reshape(24, 32).MatMul(w).Affine(0.5, 0.25).SiLU()
				s := h.Sum(1).Reshape(24, 1)
				return tensor.Concat(1, h, s).Mul(s.Sigmoid())
			}
			x := backendtest.Randn(g, d, 1, 2, 12, 32)
			w := backendtest.Randn(g, d, 2, 32, 16)
			syncOK(t, g)
			inUse := func() int64 { n, _ := mem.MemoryStats(); return n }
			// Earlier tests' garbage goes back now, not in the middle of the count.
			runtime.GC()
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
			// cuBLAS's workspace, taken at the first capture and held for
			// good, counts as in use from then on: taken before the count.
			held := inUse()
			ws, err := cuda.CublasWorkspace(g)
			if err != nil {
				t.Fatal(err)
			}
			if n := inUse() - held; n != 0 && n != ws || inUse() < ws {
				t.Fatalf("cuBLAS's workspace of %d bytes: in use grew by %d bytes to %d", ws, n, inUse())
			}
			before := inUse()
			call, first, err := tensor.CaptureCall(g, f, x, w)
			if err != nil {
				t.Fatal(err)
			}
			if want := tensor.Scoped(g, func() *tensor.Tensor { return f([]*tensor.Tensor{x, w}) }); !slices.Equal(first.Float32s(), want.Float32s()) {
				t.Fatal("CaptureCall's eager result differs from the call's")
			} else {
				want.Free()
			}
			first.Free()
			replays := cuda.Replays(g)
			var drivers int64
			for round := range 4 {
				if round == 2 { // the first two may fill the cache for the outputs' copies
					drivers = mem.AllocStats().DriverAllocs
				}
				x := backendtest.Randn(g, d, uint64(10+round), 2, 12, 32)
				w := backendtest.Randn(g, d, uint64(20+round), 32, 16)
				got, err := call.Run(x, w)
				if err != nil {
					t.Fatal(err)
				}
				want := tensor.Scoped(g, func() *tensor.Tensor { return f([]*tensor.Tensor{x, w}) })
				if !want.Shape().Equal(got.Shape()) || !slices.Equal(got.Float32s(), want.Float32s()) {
					t.Fatalf("round %d: the replay differs from the eager call (shape %v, want %v)", round, got.Shape(), want.Shape())
				}
				syncOK(t, g)
				got.Free()
				want.Free()
				x.Free()
				w.Free()
			}
			if n := cuda.Replays(g) - replays; n != 4 {
				t.Errorf("%d graph launches, want 4", n)
			}
			if n := mem.AllocStats().DriverAllocs - drivers; n != 0 {
				t.Errorf("steady replays took %d blocks from the driver", n)
			}
			call.Close()
			syncOK(t, g)
			if n := inUse() - before; n != 0 {
				t.Errorf("a closed call left %d bytes in use", n)
			}
			x.Free() // after the count: reachable until here, the collector leaves them alone
			w.Free()
		})
	}
}

// A capture that copies to or from the host, or needs more new blocks than
// it may add to the cache, fails (unsupported: the caller runs eagerly), and
// leaves the backend working; graphs turned off refuse capture.
func TestGraphCaptureRefusesHostWork(t *testing.T) {
	g := device(t)
	b := graphsOn(t, g)
	x := backendtest.Randn(g, tensor.Float32, 3, 64)
	for _, c := range []struct {
		name, want string
		f          func()
	}{
		{"upload", "capturing", func() { tensor.FromFloat32(g, tensor.Float32, tensor.Shape{4}, []float32{1, 2, 3, 4}).Affine(2, 0) }},
		{"download", "capturing", func() { _ = x.Affine(2, 0).Float32s() }},
		// Ten new sizes at once: the capture grows the cache by eight blocks, one per try, and gives up.
		{"allocation", "inside a graph capture", func() {
			tensor.Scoped(g, func() *tensor.Tensor {
				var out *tensor.Tensor
				for i := range 10 {
					out = tensor.Zeros(g, tensor.Float32, 10000+200*i)
				}
				return out
			})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "allocation" {
				// Blocks of those sizes left cached by earlier tests would
				// spare the capture its growths.
				cuda.TrimCache(g)
			}
			x.Affine(2, 0).Free() // the cache holds a block for the capture's first op
			graph, err := b.Capture(c.f)
			if err == nil {
				graph.Close()
				t.Fatal("the capture succeeded")
			}
			if !errors.Is(err, tensor.ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want one wrapping ErrUnsupported that says %q", err, c.want)
			}
			backendtest.AssertCloseValues(t, x.Affine(2, 1).Float64s(), x.Affine(1, 0).Affine(2, 1).Float64s(), 0)
			syncOK(t, g)
		})
	}
	// A panic inside ends the capture on its way out; a capture inside
	// another is refused.
	func() {
		defer func() { _ = recover() }()
		_, _ = b.Capture(func() {
			x.Affine(2, 0)
			panic("stop")
		})
	}()
	var nested error
	outer, err := b.Capture(func() { _, nested = b.Capture(func() {}) })
	if err != nil || !errors.Is(nested, tensor.ErrUnsupported) {
		t.Fatalf("after a panic, a capture holding another: %v; the inner one: %v (want nil, ErrUnsupported)", err, nested)
	}
	outer.Replay()
	outer.Close()
	syncOK(t, g)
	_, err = b.Profile(func() error {
		_, err := b.Capture(func() { x.Affine(2, 0) })
		if !errors.Is(err, tensor.ErrUnsupported) || !strings.Contains(err.Error(), "profile") {
			t.Errorf("a capture while profiling: %v, want ErrUnsupported naming the profile", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.SetGraphs(false)
	if _, _, err := tensor.CaptureCall(g, func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Affine(2, 0) }, x); !errors.Is(err, tensor.ErrUnsupported) {
		t.Fatalf("with graphs off: %v, want ErrUnsupported", err)
	}
	syncOK(t, g)
}

// The tiny UNet's call replayed over several timesteps equals the eager
// call bit for bit (the same kernels in the same order). One dtype, f16:
// the mechanism is the same in each, and a UNet call costs seconds on the
// emulator.
func TestGraphUNetMatchesEager(t *testing.T) {
	g := device(t)
	graphsOn(t, g)
	for _, d := range []tensor.DType{tensor.Float16} {
		t.Run(d.String(), func(t *testing.T) {
			m := loadOn(t, "tiny-sd1", g, d)
			u := m.UNet
			context := backendtest.Randn(g, d, 5, 2, 77, u.Config.CrossAttentionDim)
			latent := backendtest.Randn(g, d, 6, 2, 4, 8, 8)
			prepared := u.PrepareContext(context) // read in place by the graph
			defer prepared.Free()
			proj := u.TimeProjection(g, d, []float64{999, 999})
			call, _, err := tensor.CaptureCall(g, func(in []*tensor.Tensor) *tensor.Tensor {
				out, err := u.ForwardProjected(in[0], in[1], prepared)
				if err != nil {
					panic(err)
				}
				return out
			}, latent, proj)
			if err != nil {
				t.Fatal(err)
			}
			defer call.Close()
			for i, ts := range []float64{901, 21} {
				x := latent.Affine(1-0.2*float64(i), 0.1)
				want, err := u.ForwardContext(x, []float64{ts, ts}, prepared, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := call.Run(x, u.TimeProjection(g, d, []float64{ts, ts}))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.Float32s(), want.Float32s()) {
					t.Fatalf("timestep %g: the replayed UNet call differs from the eager one (rel. L2 %.3g)", ts,
						backendtest.RelL2(got.Float64s(), want.Float64s()))
				}
			}
			syncOK(t, g)
		})
	}
}

// Text-to-image on the tiny model: with graphs the loop replays the whole
// step (model input, UNet call, guidance combine and scheduler update) at
// every step after the first (which runs it eagerly and captures it), and
// the latents and image equal those without, bit for bit, for every
// scheduler, with guidance and, for the multistep ones whose history
// slots a replay rewrites, without. DDIM with clip_sample, not linear,
// captures the UNet call alone (and clamps on the host between replays).
func TestTextToImageGraphMatchesEager(t *testing.T) {
	g := device(t)
	b := graphsOn(t, g)
	var unclipped []float32 // DDIM's latents without clip_sample, from the case before
	for _, c := range []struct {
		sched    string
		guidance float64
		clip     bool
	}{{"ddim", 7.5, false}, {"ddim", 7.5, true}, {"pndm", 7.5, false}, {"pndm", 1, false}, {"euler", 7.5, false},
		{"dpm++2m", 7.5, false}, {"dpm++2m", 1, false}} {
		name := fmt.Sprintf("%s/guidance_%g", c.sched, c.guidance)
		if c.clip {
			name += "/clip_sample"
		}
		t.Run(name, func(t *testing.T) {
			m := loadOn(t, "tiny-sd1", g, tensor.Float32)
			if c.clip {
				m.Variant.Sched.ClipSample, m.Variant.Sched.ClipSampleRange = true, 0.5 // a tight range, so the clamp bites
			}
			// Three steps: PNDM's and DPM-Solver++'s multistep updates are reached.
			req := pipeline.Request{Prompt: "a mouse hunting a lion", NegativePrompt: "blurry", Steps: 3, Guidance: c.guidance,
				Scheduler: c.sched, Width: 64, Height: 64, Seed: 3}
			replays := cuda.Replays(g)
			withGraphs, err := m.Generate(req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n, steps := cuda.Replays(g)-replays, len(withGraphs.Timesteps); n != int64(steps-1) {
				t.Fatalf("%d graph launches for %d steps, want %d", n, steps, steps-1)
			}
			b.SetGraphs(false)
			defer b.SetGraphs(true)
			replays = cuda.Replays(g)
			eager, err := m.Generate(req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n := cuda.Replays(g) - replays; n != 0 {
				t.Fatalf("graphs off: %d graph launches", n)
			}
			if !slices.Equal(withGraphs.Latents.Float32s(), eager.Latents.Float32s()) ||
				!slices.Equal(withGraphs.Image.Float32s(), eager.Image.Float32s()) {
				t.Fatalf("with graphs the latents differ from eager (rel. L2 %.3g)",
					backendtest.RelL2(withGraphs.Latents.Float64s(), eager.Latents.Float64s()))
			}
			switch {
			case c.sched == "ddim" && !c.clip:
				unclipped = eager.Latents.Float32s()
			case c.clip && (unclipped == nil || slices.Equal(unclipped, eager.Latents.Float32s())):
				t.Fatal("clip_sample left DDIM's latents as they were without it: the clamp never ran")
			}
		})
	}
}

// A FLOP counter around the GPU captures too, and counts a graph's products
// at each replay, not at the capture: the eager run plus three replays count
// four calls.
func TestGraphCountsFLOPsAtReplay(t *testing.T) {
	g := device(t)
	graphsOn(t, g)
	c := tensor.CountFLOPs(g)
	x, w := backendtest.Randn(c, tensor.Float32, 1, 24, 32), backendtest.Randn(c, tensor.Float32, 2, 32, 16)
	call, first, err := tensor.CaptureCall(c, func(in []*tensor.Tensor) *tensor.Tensor { return in[0].MatMul(in[1]).SiLU() }, x, w)
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	first.Free()
	for range 3 {
		out, err := call.Run(x, w)
		if err != nil {
			t.Fatal(err)
		}
		out.Free()
	}
	syncOK(t, g)
	if got, want := c.FLOPs(), int64(4*2*24*32*16); got != want {
		t.Fatalf("%d FLOPs counted, want %d (four calls)", got, want)
	}
}

// RFNet on the tiny model with every steering iteration forced, the
// objects as one batch (the default): the batch's guidance passes (the
// same set of objects at every iteration) and the overall run's, and the
// denoising passes of both, each run their first pass eagerly, capture
// their second and replay it from the third on (the losses' masks fixed
// for the run, the overall run's reference maps refilled in place at each
// step; the saved maps and the losses' maps packed out of the denoising
// pass), and the scene's latents and image equal those with graphs off,
// bit for bit.
func TestRFNetGuidanceGraphMatchesEager(t *testing.T) {
	g := device(t)
	b := graphsOn(t, g)
	m := loadOn(t, "tiny-sd2", g, tensor.Float16)
	plan := &llm.Plan{Version: llm.PlanVersion, Prompt: "a mouse hunting a lion",
		Objects: []llm.Object{
			{Name: "a mouse", Box: [4]float64{40, 260, 160, 160}, Descriptions: []string{"stalking low"}},
			{Name: "a lion", Box: [4]float64{240, 120, 240, 300}, Descriptions: []string{"cowering in fear"}},
		},
		Background: "the savanna at dusk"}
	c := rfnet.Default()
	// Five steps, the first four steered: the replayed denoising passes of
	// steps 3 and 4 hand their loss maps to the losses after, that of step 5
	// measures nothing (one graph serves both).
	c.Steps, c.Width, c.Height, c.AggStart, c.BatchObjects = 5, 64, 64, 1, true
	c.MaxIndexStep, c.OverallMaxIndexStep = 4, 4
	c.MaxIter, c.OverallMaxIter = []int{2, 1}, []int{2, 1}
	c.LossThreshold, c.OverallLossThreshold = 0, 0
	// lossesAfter are a run's losses after each steered step's update, by stage.
	lossesAfter := func(run func(o rfnet.Options) (*rfnet.Result, error)) (*rfnet.Result, []float64) {
		var after []float64
		res, err := run(rfnet.Options{Config: c, Trace: func(e rfnet.TraceEvent) {
			if e.LossAfter != nil {
				after = append(after, *e.LossAfter)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res, after
	}
	runScene := func(o rfnet.Options) (*rfnet.Result, error) { return rfnet.Run(m, plan, o) }
	replays := cuda.Replays(g)
	withGraphs, afterGraphs := lossesAfter(runScene)
	// Five guidance passes of the batch and of the overall run: the third to
	// the fifth replay; five denoising passes of each: the third to the fifth.
	if n := cuda.Replays(g) - replays; n != 2*3+2*3 {
		t.Errorf("%d graph launches, want 12 (3 of the batch's guidance pass, 3 of the overall run's, 3 of each one's denoising pass)", n)
	}
	b.SetGraphs(false)
	defer b.SetGraphs(true)
	eager, afterEager := lossesAfter(runScene)
	if len(afterGraphs) < 12 || !slices.Equal(afterGraphs, afterEager) {
		t.Errorf("losses after with graphs %v, eager %v", afterGraphs, afterEager)
	}
	if !slices.Equal(withGraphs.Latents.Float32s(), eager.Latents.Float32s()) ||
		!slices.Equal(withGraphs.Image.Float32s(), eager.Image.Float32s()) {
		t.Fatalf("with graphs the scene differs from eager (latents rel. L2 %.3g)",
			backendtest.RelL2(withGraphs.Latents.Float64s(), eager.Latents.Float64s()))
	}
}
