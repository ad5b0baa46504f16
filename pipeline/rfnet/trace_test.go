package rfnet

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
)

// Steering lowers the box loss on a fixed latent: ten steering iterations at
// the first step (threshold 0, so none is skipped), read back from trace.jsonl.
func TestSteeringReducesLoss(t *testing.T) {
	f := newLossFixture(t)
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	tr, err := OpenTrace(path)
	if err != nil {
		t.Fatal(err)
	}
	f.m.emit = tr.Add
	l := f.soLoop
	l.stage, l.object, l.uncond = "object", 0, l.cond
	l.threshold, l.maxIter, l.maxIndexStep = 0, []int{10}, 1
	l.sched = oneStep(t, f)
	if _, err := f.m.steer(l, f.z.To(tensor.Float64)); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	file, _ := os.Open(path)
	defer file.Close()
	var losses []float64
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var e TraceEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Loss != nil {
			if *e.Step != 0 || *e.Iteration != len(losses) || e.Stage != "object" {
				t.Fatalf("event %+v", e)
			}
			losses = append(losses, *e.Loss)
		}
	}
	if len(losses) != 10 {
		t.Fatalf("%d steering iterations traced, want 10", len(losses))
	}
	down := 0
	for i := 1; i < len(losses); i++ {
		if losses[i] < losses[i-1] {
			down++
		}
	}
	t.Logf("losses %.4f", losses)
	// The reference's step (√(1-ᾱ) times the gradient of 5·L) is small for the
	// random tiny UNet, so the decrease is small, but every iteration decreases.
	if !(losses[len(losses)-1] < losses[0]) || down != len(losses)-1 {
		t.Fatalf("the loss did not go down: %v", losses)
	}
}

// Each iteration's row carries the loss after its update: the next
// iteration's loss before, or for the step's last iteration the loss the
// denoising pass measured, which equals a steering pass on the updated
// latent. Steps the schedule does not steer get one row saying why: here
// step 1 is past max_index_step and step 2's budget is 0 (with max_index_step
// past it).
func TestTraceRowsExplainEachStep(t *testing.T) {
	f := newLossFixture(t)
	sc, err := sched.New("ddim", f.m.Variant.Sched, 3)
	if err != nil {
		t.Fatal(err)
	}
	var rows []TraceEvent
	f.m.emit = func(e TraceEvent) { rows = append(rows, e) }
	l := f.soLoop
	l.stage, l.object, l.uncond, l.sched = "object", 0, l.cond, sc
	l.threshold, l.maxIter, l.maxIndexStep = 0, []int{3}, 1
	z := f.z.To(tensor.Float64)
	if _, err := f.m.steer(l, z); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 3 iterations and 2 why rows: %+v", len(rows), rows)
	}
	for n, e := range rows[:3] {
		if *e.Step != 0 || *e.Iteration != n || e.Loss == nil || e.LossAfter == nil || e.GradNorm == nil || e.StepSize == nil || e.Timestep == nil || e.Why != "" {
			t.Fatalf("row %d: %+v", n, e)
		}
		if *e.StepSize != sc.GradientStepScale(0) || *e.Timestep != sc.Timesteps()[0] || !(*e.GradNorm > 0) {
			t.Errorf("row %d: step size %v, timestep %v, gradient norm %v", n, *e.StepSize, *e.Timestep, *e.GradNorm)
		}
		if n < 2 && (*e.LossAfter != *rows[n+1].Loss || e.LossAfterFrom != afterNextIteration) {
			t.Errorf("row %d: loss after %v from %q, want the next iteration's loss %v", n, *e.LossAfter, e.LossAfterFrom, *rows[n+1].Loss)
		}
	}
	// The latent after step 0's three updates, measured by a steering pass.
	last := 10000.0
	quiet := *f.m
	quiet.emit = func(TraceEvent) {}
	updated, _, err := quiet.steerStep(l, z, 0, sc.Timesteps()[0], &last)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := quiet.steeringPass(l, updated, 0, sc.Timesteps()[0])
	if err != nil {
		t.Fatal(err)
	}
	final := rows[2]
	if d := math.Abs(*final.LossAfter - m.loss/l.scale); final.LossAfterFrom != afterDenoisingPass || d > 1e-9*math.Abs(m.loss) {
		t.Errorf("last iteration: loss after %v from %q, a steering pass on the updated latent measures %v", *final.LossAfter, final.LossAfterFrom, m.loss/l.scale)
	}
	for i, want := range []string{whyPastSteeredSteps, whyPastSteeredSteps} {
		if e := rows[3+i]; *e.Step != i+1 || e.Why != want || e.Loss != nil || e.Iteration != nil {
			t.Errorf("step %d: %+v, want a %s row without a loss", i+1, e, want)
		}
	}

	// A zero budget, and the gate once a loss is at or below the threshold.
	rows = nil
	l.maxIter, l.maxIndexStep = []int{1, 0, 1}, 3
	if _, err := f.m.steer(l, z); err != nil {
		t.Fatal(err)
	}
	l.threshold = 100 // above the first loss, below the initial 10000/scale
	if _, err := f.m.steer(l, z); err != nil {
		t.Fatal(err)
	}
	var whys []string
	for _, e := range rows {
		whys = append(whys, e.Why)
	}
	want := []string{"", whyBudgetSpent, "", "", whyBudgetSpent, whyGate}
	if !slices.Equal(whys, want) {
		t.Fatalf("why per row %q, want %q", whys, want)
	}
	if g := rows[5]; *g.LastLoss != *rows[3].Loss || *g.Threshold != 100 {
		t.Errorf("gate row %+v: want step 0's loss %v and the threshold", g, *rows[3].Loss)
	}
}
