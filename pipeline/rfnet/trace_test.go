package rfnet

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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
