package sched

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// TestEveryStepCountRunsOrIsRefused sweeps every scheduler over every step count
// a config allows on paper (1 to num_train_timesteps), short training schedules
// and every spacing and offset: New either refuses the count with an error that
// names the largest one that works, or every step runs (ScaleModelInput,
// GradientStepScale, Step) with finite results. --steps 1000 with ddim or pndm, and
// num_train_timesteps 5 with 5 steps, used to index past ᾱ and panic.
func TestEveryStepCountRunsOrIsRefused(t *testing.T) {
	b := cpu.New()
	for _, name := range Names() {
		for _, T := range []int{2, 3, 5, 10, 1000} {
			for _, spacing := range []string{"", "leading", "linspace", "trailing"} {
				for _, offset := range []int{0, 1} {
					c := SD()
					c.NumTrainTimesteps, c.TimestepSpacing, c.StepsOffset = T, spacing, offset
					label := fmt.Sprintf("%s/T=%d/%s/offset=%d", name, T, spacing, offset)
					for steps := 1; steps <= T; steps++ {
						if T == 1000 && steps > 20 && steps < 990 && steps%97 != 0 {
							continue // the edges and a sample of the middle
						}
						if err := runAll(b, name, c, steps); err != nil {
							t.Errorf("%s/steps=%d: %v", label, steps, err)
						}
					}
				}
			}
		}
	}
}

// runAll builds the scheduler and runs every step, turning a panic into an error.
func runAll(b tensor.Backend, name string, c Config, steps int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	s, err := New(name, c, steps)
	if err != nil {
		var most int
		_, after, ok := strings.Cut(err.Error(), "use at most ")
		if !ok {
			if steps == 1 && strings.Contains(err.Error(), "with any number of steps") {
				return nil
			}
			return fmt.Errorf("refused without naming the step limit: %v", err)
		}
		if _, serr := fmt.Sscanf(after, "%d steps", &most); serr != nil {
			return fmt.Errorf("refused with an unreadable limit: %v", err)
		}
		if _, err := New(name, c, most); err != nil || most >= steps {
			return fmt.Errorf("the suggested %d steps do not work either: %v", most, err)
		}
		return nil
	}
	shape := tensor.Shape{1, 1, 2, 2}
	x := tensor.FromFloat32(b, tensor.Float32, shape, []float32{0.5, -1, 2, 0.25}).Scale(s.InitNoiseSigma())
	out := tensor.FromFloat32(b, tensor.Float32, shape, []float32{0.1, -0.2, 0.3, -0.4})
	for i := range s.Timesteps() {
		if g := s.GradientStepScale(i); math.IsNaN(g) || math.IsInf(g, 0) {
			return fmt.Errorf("step %d: gradient step scale %v", i, g)
		}
		s.ScaleModelInput(x, i)
		x = s.Step(out, x, i)
	}
	for _, v := range x.Float64s() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("final latent %v", x.Float64s())
		}
	}
	return nil
}
