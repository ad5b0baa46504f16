package sched

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/rfnet/rfnet-native/internal/jsonconfig"
)

// Prediction is what the UNet predicts.
type Prediction string

const (
	// Epsilon is the added noise (SD 1.x, SD 2.x-base).
	Epsilon Prediction = "epsilon"
	// VPrediction is v = √ᾱ·ε - √(1-ᾱ)·x₀ (SD 2.x 768).
	VPrediction Prediction = "v_prediction"
)

// ParsePrediction accepts epsilon, v and v_prediction.
func ParsePrediction(s string) (Prediction, error) {
	switch strings.ToLower(s) {
	case "epsilon", "eps":
		return Epsilon, nil
	case "v", "v_prediction", "v-prediction":
		return VPrediction, nil
	}
	return "", fmt.Errorf("sched: unknown prediction type %q (want epsilon or v)", s)
}

// Config follows the keys of a diffusers scheduler_config.json. A key the file
// leaves out takes the default of the scheduler class that reads it, as
// diffusers' from_config does; TimestepSpacing "" means that class default.
type Config struct {
	NumTrainTimesteps int        `json:"num_train_timesteps"`
	BetaStart         float64    `json:"beta_start"`
	BetaEnd           float64    `json:"beta_end"`
	BetaSchedule      string     `json:"beta_schedule"`
	TrainedBetas      []float64  `json:"trained_betas"`
	PredictionType    Prediction `json:"prediction_type"`
	SetAlphaToOne     bool       `json:"set_alpha_to_one"`
	StepsOffset       int        `json:"steps_offset"`
	ClipSample        bool       `json:"clip_sample"`
	ClipSampleRange   float64    `json:"clip_sample_range"`
	TimestepSpacing   string     `json:"timestep_spacing"`
	// SkipPRKSteps is recorded for completeness: PNDM always runs PLMS steps only
	// (Runge-Kutta warm-up steps are not implemented, and SD configs skip them).
	SkipPRKSteps    bool   `json:"skip_prk_steps"`
	UseKarrasSigmas bool   `json:"use_karras_sigmas"`
	SolverOrder     int    `json:"solver_order"`
	LowerOrderFinal *bool  `json:"lower_order_final"`
	AlgorithmType   string `json:"algorithm_type"`
	SolverType      string `json:"solver_type"`
	Thresholding    bool   `json:"thresholding"`
}

// SD is the scheduler configuration Stable Diffusion 1.x and 2.x ship
// (scheduler/scheduler_config.json of their repositories), epsilon prediction.
func SD() Config {
	return Config{NumTrainTimesteps: 1000, BetaStart: 0.00085, BetaEnd: 0.012, BetaSchedule: "scaled_linear",
		PredictionType: Epsilon, StepsOffset: 1, SkipPRKSteps: true, ClipSampleRange: 1, SolverOrder: 2,
		AlgorithmType: "dpmsolver++", SolverType: "midpoint"}
}

// LoadConfig reads a scheduler_config.json over base.
func LoadConfig(path string, base Config) (Config, error) {
	return jsonconfig.Load("sched", path, base, Config.validate)
}

func (c Config) validate() error {
	switch {
	case c.NumTrainTimesteps < 2:
		return fmt.Errorf("sched: num_train_timesteps %d", c.NumTrainTimesteps)
	case c.PredictionType != Epsilon && c.PredictionType != VPrediction:
		return fmt.Errorf("sched: prediction_type %q is not supported (epsilon or v_prediction)", c.PredictionType)
	case c.Thresholding:
		return fmt.Errorf("sched: thresholding is not supported")
	case c.UseKarrasSigmas:
		return fmt.Errorf("sched: use_karras_sigmas is not supported")
	}
	if c.TrainedBetas == nil {
		switch c.BetaSchedule {
		case "linear", "scaled_linear":
		default:
			return fmt.Errorf("sched: beta_schedule %q is not supported (linear or scaled_linear)", c.BetaSchedule)
		}
	}
	return nil
}

// alphasCumprod is ᾱ_t for t = 0..T-1, in float32 steps as diffusers computes it
// (torch.linspace in float32, squared, then a float32 cumulative product).
func (c Config) alphasCumprod() []float64 {
	n := c.NumTrainTimesteps
	betas := make([]float32, n)
	switch {
	case c.TrainedBetas != nil:
		for i := range betas {
			betas[i] = float32(c.TrainedBetas[i])
		}
	case c.BetaSchedule == "linear":
		for i, v := range linspace32(c.BetaStart, c.BetaEnd, n) {
			betas[i] = v
		}
	default: // scaled_linear
		for i, v := range linspace32(math.Sqrt(c.BetaStart), math.Sqrt(c.BetaEnd), n) {
			betas[i] = v * v
		}
	}
	out := make([]float64, n)
	acc := float32(1)
	for i, b := range betas {
		acc *= 1 - b
		out[i] = float64(acc)
	}
	return out
}

// linspace32 is torch.linspace in float32: the first half counts up from start,
// the second half down from end.
func linspace32(start, end float64, n int) []float32 {
	out := make([]float32, n)
	step := float32((end - start) / float64(n-1))
	half := n / 2
	for i := range out {
		if i < half {
			out[i] = float32(start) + step*float32(i)
		} else {
			out[i] = float32(end) - step*float32(n-1-i)
		}
	}
	return out
}

// Names lists the schedulers New accepts.
func Names() []string {
	names := make([]string, 0, len(schedulers))
	for n := range schedulers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// schedulers are the schedulers New accepts, by name, each with the names
// AUTOMATIC1111's web UI gives the same sampling in the "parameters" text of
// its images (A1111Names).
var schedulers = map[string]struct {
	new func(Config, int) (Scheduler, error)
	// a1111Sampler is A1111's sampler label. a1111ScheduleType is its
	// "Schedule type" where A1111's default for that sampler (Automatic)
	// would space the steps otherwise, else "". Its DDIM and PLMS keep their
	// own timesteps whatever the schedule type; its Euler under Automatic
	// takes sigmas at evenly spaced timesteps (Uniform), as diffusers'
	// linspace spacing, our Euler's default, does; its DPM++ 2M under
	// Automatic takes Karras sigmas, which our DPM++ 2M does not
	// (use_karras_sigmas is refused), so it is written Uniform.
	a1111Sampler, a1111ScheduleType string
}{
	"ddim":    {newDDIM, "DDIM", ""},
	"pndm":    {newPNDM, "PLMS", ""},
	"euler":   {newEuler, "Euler", ""},
	"dpm++2m": {newDPMSolver, "DPM++ 2M", "Uniform"},
}

// A1111Names returns the "Sampler" and "Schedule type" values AUTOMATIC1111's
// web UI writes for the sampling that the scheduler name (as New accepts it)
// does; scheduleType is "" where A1111 needs none. ok is false for a name
// New does not know.
func A1111Names(name string) (sampler, scheduleType string, ok bool) {
	s, ok := schedulers[strings.ToLower(name)]
	return s.a1111Sampler, s.a1111ScheduleType, ok
}

// New returns a scheduler set up for steps denoising steps.
func New(name string, c Config, steps int) (Scheduler, error) {
	entry, ok := schedulers[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("sched: unknown scheduler %q (choose one of %s)", name, strings.Join(Names(), ", "))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if steps < 1 || steps > c.NumTrainTimesteps {
		return nil, fmt.Errorf("sched: %d steps (want 1 to %d)", steps, c.NumTrainTimesteps)
	}
	ctor := entry.new
	s, err := ctor(c, steps)
	if err != nil || inTraining(s, c) {
		return s, err
	}
	// With "leading" spacing the steps_offset pushes the largest timestep of a
	// long schedule (1000 steps of 1000 with offset 1) past the training
	// schedule, where there is no ᾱ: diffusers fails there too, with an index error.
	most := 0
	for n := steps - 1; n >= 1 && most == 0; n-- {
		if s, err := ctor(c, n); err == nil && inTraining(s, c) {
			most = n
		}
	}
	if most == 0 {
		return nil, fmt.Errorf("sched: %s reaches timestep %g with any number of steps, outside the training schedule's 0..%d: steps_offset %d is too large for num_train_timesteps %d",
			name, s.Timesteps()[0], c.NumTrainTimesteps-1, c.StepsOffset, c.NumTrainTimesteps)
	}
	spacing := ""
	if c.TimestepSpacing != "" {
		spacing = fmt.Sprintf("timestep_spacing %q, ", c.TimestepSpacing)
	}
	return nil, fmt.Errorf("sched: %s with %d steps reaches timestep %g, outside the training schedule's 0..%d (%ssteps_offset %d): use at most %d steps",
		name, steps, s.Timesteps()[0], c.NumTrainTimesteps-1, spacing, c.StepsOffset, most)
}

// inTraining reports whether every timestep of s lies in the training schedule [0, T-1].
func inTraining(s Scheduler, c Config) bool {
	for _, t := range s.Timesteps() {
		if t < 0 || t > float64(c.NumTrainTimesteps-1) {
			return false
		}
	}
	return true
}

// spaced returns the timesteps of a schedule with the given spacing, largest
// first, as diffusers' set_timesteps computes them (before any per-class
// adjustments), in float64.
func spaced(spacing string, T, steps, offset int) ([]float64, error) {
	ts := make([]float64, steps)
	switch spacing {
	case "leading":
		ratio := T / steps
		for i := range ts {
			ts[steps-1-i] = float64(i*ratio + offset)
		}
	case "linspace":
		for i := range ts {
			ts[steps-1-i] = float64(i) * float64(T-1) / float64(max(steps-1, 1))
		}
	case "trailing":
		ratio := float64(T) / float64(steps)
		for i := range ts {
			ts[i] = math.RoundToEven(float64(T)-float64(i)*ratio) - 1
		}
	default:
		return nil, fmt.Errorf("sched: timestep_spacing %q (want leading, linspace or trailing)", spacing)
	}
	return ts, nil
}
