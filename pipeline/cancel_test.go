package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/tensor"
)

// A canceled context stops the generation at the next step with an error
// that says so; an expired deadline is told apart from a cancel.
func TestGenerateStopsWhenCanceled(t *testing.T) {
	m := loadTiny(t, "tiny-sd1", false, tensor.Float32)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	steps := 0
	_, err := m.Generate(Request{Prompt: "a cat", Steps: 6, Guidance: 7.5, Scheduler: "ddim", Width: 64, Height: 64, Context: ctx},
		func(step, total int, _ *tensor.Tensor) {
			steps = step
			if step == 2 {
				cancel()
			}
		})
	if !errors.Is(err, context.Canceled) || steps != 2 {
		t.Fatalf("after a cancel at step 2: steps %d, error %v", steps, err)
	}
	dead, stop := context.WithDeadline(context.Background(), nowMinusOne())
	defer stop()
	if _, err := m.Generate(Request{Prompt: "a cat", Steps: 2, Scheduler: "ddim", Width: 64, Height: 64, Context: dead}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past its deadline: %v", err)
	}
}

func nowMinusOne() time.Time { return time.Now().Add(-time.Second) }
