package sched

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// Linear is a Scheduler whose every step is linear in the latent, the model
// output and the scheduler's own history (PNDM's last model outputs and its
// saved sample, DPM-Solver++'s last x̂₀): DDIM without clip_sample, PNDM,
// Euler and DPM-Solver++ 2M. Its state is Slots latent-sized slots, slot 0
// the latent and the others the history (zeros before the first step), and
// a step is a matrix of coefficients applied elementwise:
//
//	state' = Coefficients(step).Step · [state; model output]
//
// so a whole step, with classifier-free guidance folded in (its two model
// outputs weighted 1-g and g), is one tensor.Combine whatever the scheduler.
// The eager Step runs that same Combine, so a captured step (pipeline's CUDA
// graph, which gets each step's coefficients by a refill of a device buffer)
// and an eager one compute the same values; each scheduler's arithmetic is
// in its Coefficients alone.
type Linear interface {
	Scheduler
	// Slots is the number of slots of the state.
	Slots() int
	// Coefficients are step's arithmetic.
	Coefficients(step int) Coefficients
	// linear reports whether the steps are linear with this configuration
	// (DDIM's clip_sample clamps x̂₀, which no matrix does).
	linear() bool
}

// AsLinear returns s as a Linear scheduler, when its steps are linear.
func AsLinear(s Scheduler) (Linear, bool) {
	l, ok := s.(Linear)
	if !ok || !l.linear() {
		return nil, false
	}
	return l, true
}

// Coefficients are one step of a Linear scheduler.
type Coefficients struct {
	// Input is the model input's factor on the latent: Euler's 1/√(σ²+1),
	// 1 for the others.
	Input float64
	// Step has Slots rows of Slots+1 columns: the next state is
	// Step·[state; model output].
	Step [][]float64
}

// StepMatrix is Step with its model-output column spread over the model
// outputs of one step, weighted by weights: [1] for a single prediction,
// [1-g, g] for classifier-free guidance's unconditional and conditional
// ones (uncond + g·(cond - uncond)). It is row-major, Slots rows of
// Slots+len(weights), the coefficients of tensor.Combine over
// [state; outputs...].
func (c Coefficients) StepMatrix(weights ...float64) []float64 {
	slots := len(c.Step)
	m := make([]float64, 0, slots*(slots+len(weights)))
	for _, row := range c.Step {
		m = append(m, row[:slots]...)
		for _, w := range weights {
			m = append(m, row[slots]*w)
		}
	}
	return m
}

// InputMatrix is the model input of a batch of copies of the latent:
// batch rows of slots columns, Input at column 0 (the latent).
func (c Coefficients) InputMatrix(batch int) []float64 {
	slots := len(c.Step)
	m := make([]float64, batch*slots)
	for r := range batch {
		m[r*slots] = c.Input
	}
	return m
}

// identity returns the slots×(slots+1) matrix that keeps every slot, for
// the Coefficients to edit.
func identity(slots int) [][]float64 {
	m := make([][]float64, slots)
	for i := range m {
		m[i] = unit(slots+1, i)
	}
	return m
}

// unit is a row of n coefficients that picks column j.
func unit(n, j int) []float64 {
	r := make([]float64, n)
	r[j] = 1
	return r
}

// history is a Linear scheduler's state past the latent between eager
// Steps: [Slots-1, latent size], nil before the first step.
type history struct{ t *tensor.Tensor }

// step is the eager Step of l: Combine over [latent; history; out], the new
// history kept and the new latent returned in latent's shape. The latent is
// the caller's, not the last step's output: RFNet steers it in between.
func (h *history) step(l Linear, out, latent *tensor.Tensor, step int) *tensor.Tensor {
	slots, n := l.Slots(), latent.Numel()
	b, d := latent.Backend(), latent.DType()
	if out.Numel() != n || out.DType() != latent.DType() {
		panic(fmt.Sprintf("sched: step of latent %v with model output %v", latent, out))
	}
	parts := []*tensor.Tensor{latent.Reshape(1, n)}
	if slots > 1 {
		if h.t == nil || h.t.Dim(1) != n {
			h.t = tensor.Zeros(b, d, slots-1, n)
		}
		parts = append(parts, h.t)
	}
	parts = append(parts, out.Reshape(1, n))
	coef := tensor.FromFloat64(b, tensor.CoefDType(d), tensor.Shape{slots, slots + 1}, l.Coefficients(step).StepMatrix(1))
	next := tensor.Combine(coef, tensor.Concat(0, parts...))
	if slots > 1 {
		h.t = next.Narrow(0, 1, slots-1)
	}
	return next.Narrow(0, 0, 1).Reshape(latent.Shape()...)
}
