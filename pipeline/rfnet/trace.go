package rfnet

// TraceEvent is one line of trace.jsonl. Three kinds share it, told apart by
// their fields (README, "Reading trace.jsonl"):
//   - a steering iteration: Iteration and Loss set;
//   - a step without steering: Why set, saying which rule skipped it;
//   - a stage timing: Seconds set.
//
// Losses are unscaled (the loss_scale factor taken out), the value the
// threshold is compared with. Readers written for the first trace format
// (stage, object, step, iteration, loss, seconds, name) read it unchanged:
// those fields kept their names and meaning, and rows without steering carry
// no loss.
type TraceEvent struct {
	Stage     string   `json:"stage"`            // "object", "overall" or "timing"
	Object    *int     `json:"object,omitempty"` // the object's index in the sorted order
	Step      *int     `json:"step,omitempty"`   // the denoising step's index, from 0
	Timestep  *float64 `json:"timestep,omitempty"`
	Iteration *int     `json:"iteration,omitempty"`
	// StepSize is the factor of the gradient in the update (§7.4): √(1-ᾱ_t)
	// for the schedulers on ᾱ (DDIM, PNDM, DPM-Solver), σ² for Euler's sigmas
	// (sched.Scheduler.GradientStepScale).
	StepSize *float64 `json:"step_size,omitempty"`
	Loss     *float64 `json:"loss,omitempty"` // before the update
	// LossAfter is the loss on the updated latent, and LossAfterFrom the pass
	// that measured it (see afterNextIteration and afterDenoisingPass).
	LossAfter     *float64 `json:"loss_after,omitempty"`
	LossAfterFrom string   `json:"loss_after_from,omitempty"`
	// GradNorm is the L2 norm of the gradient of loss_scale·loss with
	// respect to the latent: the update is step_size times it.
	GradNorm *float64 `json:"grad_norm,omitempty"`
	// Suppression and Reference are the overall run's two constraints in
	// Loss (§10.2-10.4; they add up to it); absent for a constraint that is
	// off and in the single-object runs.
	Suppression *float64 `json:"suppression,omitempty"`
	Reference   *float64 `json:"reference,omitempty"`
	Why         string   `json:"why,omitempty"` // one of the why* values
	// LastLoss and Threshold are the numbers the gate compared (Why "gate").
	LastLoss  *float64 `json:"last_loss,omitempty"`
	Threshold *float64 `json:"threshold,omitempty"`
	Seconds   *float64 `json:"seconds,omitempty"`
	Name      string   `json:"name,omitempty"` // the timed stage
}

// Why a step ran no steering iteration, in the order steer checks them.
const (
	// whyNoLoss: the run has no steering loss (the overall run of a plan
	// without objects, or with both constraints off).
	whyNoLoss = "no_loss"
	// whyPastSteeredSteps: the step index is max_index_step (or
	// overall_max_index_step) or more.
	whyPastSteeredSteps = "past_steered_steps"
	// whyBudgetSpent: the iteration schedule (max_iter) gives the step no iteration.
	whyBudgetSpent = "budget_spent"
	// whyGate: the last measured loss is at or below the threshold (§7.3:
	// it carries over steps, so once it is, no later step steers unless
	// remeasure_loss is set).
	whyGate = "gate"
)

// Where a steering iteration's LossAfter comes from. Both passes see the
// updated latent at the same timestep and prompt, so neither costs a pass
// of its own.
const (
	// afterNextIteration: the next iteration of the same step measured it
	// as its loss before its own update.
	afterNextIteration = "next_iteration"
	// afterDenoisingPass: the step's last iteration, measured on the cond
	// half of the denoising pass that follows it (§7.5).
	afterDenoisingPass = "denoising_pass"
)
