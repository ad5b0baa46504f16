package rfnet

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
)

// runBoth runs plan with c one by one and as a batch and checks the batch
// gives the same latents, masks and per-object trace rows (CPU fp32, within
// 1e-5 relative). It returns the one-by-one run's steering losses by object.
func runBoth(t *testing.T, plan *llm.Plan, c Config) map[int][]float64 {
	t.Helper()
	m := tinyModel(t, "tiny-sd2", tensor.Float32)
	run := func(batch bool) (*Result, map[int][]TraceEvent) {
		c := c
		c.BatchObjects = batch
		rows := map[int][]TraceEvent{}
		res, err := Run(m, plan, Options{Config: c, Trace: func(e TraceEvent) {
			if e.Stage == "object" {
				rows[*e.Object] = append(rows[*e.Object], e)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res, rows
	}
	seq, seqRows := run(false)
	bat, batRows := run(true)
	close := func(what string, a, b []float64) {
		t.Helper()
		if len(a) != len(b) {
			t.Fatalf("%s: %d values one by one, %d batched", what, len(a), len(b))
		}
		scale := 0.0
		for _, v := range a {
			scale = max(scale, math.Abs(v))
		}
		for i := range a {
			if d := math.Abs(a[i] - b[i]); d > 1e-5*max(scale, 1e-30) {
				t.Fatalf("%s[%d]: %g one by one, %g batched", what, i, a[i], b[i])
			}
		}
	}
	close("final latents", seq.Latents.Float64s(), bat.Latents.Float64s())
	losses := map[int][]float64{}
	for j := range seq.Objects {
		so, bo := seq.Objects[j], bat.Objects[j]
		close("object image", so.Image.Float64s(), bo.Image.Float64s())
		close("object mask", so.Mask, bo.Mask)
		close("object aligned mask", so.AlignedMask, bo.AlignedMask)
		close("object saliency", so.Saliency, bo.Saliency)
		if so.Shift != bo.Shift {
			t.Fatalf("object %d: shift %v one by one, %v batched", j, so.Shift, bo.Shift)
		}
		sg, bg := seq.Geometry.Objects[j], bat.Geometry.Objects[j]
		if len(sg.SteeredSteps) != len(bg.SteeredSteps) {
			t.Fatalf("object %d: steered steps %v one by one, %v batched", j, sg.SteeredSteps, bg.SteeredSteps)
		}
		sr, br := seqRows[j], batRows[j]
		if len(sr) != len(br) {
			t.Fatalf("object %d: %d trace rows one by one, %d batched", j, len(sr), len(br))
		}
		for i := range sr {
			a, b := sr[i], br[i]
			if *a.Step != *b.Step || a.Why != b.Why || (a.Iteration == nil) != (b.Iteration == nil) ||
				(a.Iteration != nil && *a.Iteration != *b.Iteration) || (a.LossAfter == nil) != (b.LossAfter == nil) {
				t.Fatalf("object %d row %d: %+v one by one, %+v batched", j, i, a, b)
			}
			if a.Loss != nil {
				close("loss", []float64{*a.Loss, *a.StepSize, *a.GradNorm}, []float64{*b.Loss, *b.StepSize, *b.GradNorm})
				losses[j] = append(losses[j], *a.Loss)
			}
			if a.LossAfter != nil {
				close("loss after", []float64{*a.LossAfter}, []float64{*b.LossAfter})
			}
		}
	}
	return losses
}

func TestBatchedObjectsEqualOneByOneForced(t *testing.T) {
	c := testConfig()
	c.LossThreshold, c.OverallLossThreshold = 0, 0
	losses := runBoth(t, testPlan(), c)
	if len(losses[0]) == 0 || len(losses[0]) != len(losses[1]) {
		t.Fatalf("forced schedule: %d and %d iterations", len(losses[0]), len(losses[1]))
	}
}

// A threshold between the two objects' lowest losses closes one object's
// gate while the other still iterates.
func TestBatchedObjectsEqualOneByOneGatesCloseApart(t *testing.T) {
	c := testConfig()
	c.LossThreshold = 0
	forced := runBoth(t, testPlan(), c)
	lowest := func(v []float64) float64 {
		m := math.Inf(1)
		for _, x := range v {
			m = min(m, x)
		}
		return m
	}
	a, b := lowest(forced[0]), lowest(forced[1])
	early := 0 // the object with the lower lowest loss
	if b < a {
		early = 1
	}
	c.LossThreshold = (a + b) / 2
	losses := runBoth(t, testPlan(), c)
	late := 1 - early
	t.Logf("threshold %g: %d and %d iterations (forced %d)", c.LossThreshold, len(losses[0]), len(losses[1]), len(forced[0]))
	if !(len(losses[early]) < len(forced[early]) && len(losses[late]) == len(forced[late])) {
		t.Fatalf("object %d should stop iterating early, object %d not: %d and %d iterations of %d", early, late, len(losses[early]), len(losses[late]), len(forced[early]))
	}
}

func TestBatchedObjectsEqualOneByOneOneObject(t *testing.T) {
	p := testPlan()
	p.Objects = p.Objects[:1]
	runBoth(t, p, testConfig())
}

// objectStage is the test plan's object stage set up by hand on model pm:
// the runner, the spec with its prompts, and each object's initial latent.
type objectStage struct {
	r      *runner
	s      *spec
	uncond *tensor.Tensor
	zs     []*tensor.Tensor
}

func newObjectStage(t *testing.T, pm *pipeline.Model, c Config) *objectStage {
	t.Helper()
	o := &objectStage{r: &runner{Model: pm, cfg: c, emit: func(TraceEvent) {}}, s: newSpec(testPlan(), c)}
	runSAA(o.s.Objects, Config{SAA: false}, nil)
	if err := o.s.buildPrompts(pm.Tokenizer); err != nil {
		t.Fatal(err)
	}
	o.uncond, _ = pm.EncodePrompt(o.s.SONegative)
	for j := range o.s.Objects {
		o.zs = append(o.zs, toLatent(pm.Backend, pm.DType, noise(uint64(j+3), 4*16*16), 4, 16, 16, 1))
	}
	return o
}

// loop is object j's loop, with a fresh scheduler.
func (o *objectStage) loop(t *testing.T, j int) loop {
	t.Helper()
	l, err := o.r.objectLoop(o.s, j, o.uncond, attentionGrids(o.r.UNet.CrossAttentionLayers(16, 16)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// loops are every object's loops.
func (o *objectStage) loops(t *testing.T) []loop {
	t.Helper()
	var ls []loop
	for j := range o.s.Objects {
		ls = append(ls, o.loop(t, j))
	}
	return ls
}

// The batch keeps each object's saved maps as its own run does, no more:
// the same layers and sizes per step, nothing duplicated across objects.
func TestBatchedObjectsSaveNoMoreThanOneByOne(t *testing.T) {
	c := testConfig()
	c.Steps, c.MaxIndexStep = 3, 2
	o := newObjectStage(t, tinyModel(t, "tiny-sd2", tensor.Float32), c)
	r, ls, zs := o.r, o.loops(t), o.zs
	size := func(run *loopResult) (n int) {
		for _, token := range run.saved {
			for _, sm := range token {
				for _, m := range sm {
					n += len(m.v)
				}
			}
		}
		return n
	}
	runs, err := r.steerBatch(ls, zs)
	if err != nil {
		t.Fatal(err)
	}
	for j := range ls {
		one, err := r.steer(o.loop(t, j), zs[j])
		if err != nil {
			t.Fatal(err)
		}
		batched, alone := runs[j].saved[0], one.saved[0] // the object's word
		if got, want := size(runs[j]), size(one); got != want || len(runs[j].saved) != 1 || len(batched) != len(alone) || len(alone) != c.Steps {
			t.Fatalf("object %d: the batch saved %d values in %d steps, its own run %d in %d", j, got, len(batched), want, len(alone))
		}
		for i := range alone {
			if len(batched[i]) != len(alone[i]) {
				t.Fatalf("object %d step %d: %d saved layers batched, %d alone", j, i, len(batched[i]), len(alone[i]))
			}
		}
	}
}

// BenchmarkObjectStage times whole runs with each object stage on the tiny model
// (the CPU says little about a GPU's gain: the batch's point is the GPU).
func BenchmarkObjectStage(b *testing.B) {
	for _, batch := range []bool{false, true} {
		name := "one-by-one"
		if batch {
			name = "batched"
		}
		b.Run(name, func(b *testing.B) {
			m := tinyModel(b, "tiny-sd2", tensor.Float32)
			c := testConfig()
			c.BatchObjects = batch
			for b.Loop() {
				if _, err := Run(m, testPlan(), Options{Config: c}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Three objects, the loss measured afresh at every step (remeasure_loss).
func TestBatchedObjectsEqualOneByOneThreeObjects(t *testing.T) {
	p := testPlan()
	p.Objects = append(p.Objects, llm.Object{Name: "a bird", Box: [4]float64{300, 20, 120, 100}, Descriptions: []string{"circling above"}})
	c := testConfig()
	c.RemeasureLoss = true
	losses := runBoth(t, p, c)
	if len(losses) != 3 {
		t.Fatalf("steering iterations of %d objects, want 3", len(losses))
	}
}

// A batch canceled from an object's progress report stops there too.
func TestBatchedObjectsStopWhenCanceled(t *testing.T) {
	m := tinyModel(t, "tiny-sd2", tensor.Float32)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := testConfig()
	c.BatchObjects = true
	seen := 0
	_, err := Run(m, testPlan(), Options{Config: c, Context: ctx, Progress: func(string, int, int, int) {
		if seen++; seen == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || seen != 3 {
		t.Fatalf("canceled after 3 reports: %d reports, error %v", seen, err)
	}
}
