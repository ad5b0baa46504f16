package rfnet

import (
	"errors"
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/pipeline"
)

// Config holds every RFNet hyperparameter. JSON keys are the reference's
// names where it has one, but for two that said "guidance" for what is not
// classifier-free guidance (see the package doc): steering_attn_keys and
// reference_constraint, whose old names still read (see renamedKeys).
type Config struct {
	Steps     int     `json:"num_inference_steps"`
	Guidance  float64 `json:"guidance_scale"`
	Scheduler string  `json:"scheduler"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`

	// SONegative and OverallNegative are the default negative prompts (§3.7);
	// the plan's negative prompt is put in front of them.
	SONegative      string `json:"so_negative_prompt"`
	OverallNegative string `json:"overall_negative_prompt"`

	// Ablations (§10.6): SAA off uses the main description alone; the other two
	// drop the reference-attention and suppression terms.
	SAA                 bool `json:"saa"`
	ReferenceConstraint bool `json:"reference_constraint"`
	Suppression         bool `json:"suppression_constraint"`
	// SAACrossObject picks one description per object by the best combination
	// across objects (the paper's prose) instead of the best pair per object (the code).
	SAACrossObject bool `json:"saa_cross_object"`

	BgSeed      uint64  `json:"bg_seed"`
	FgSeedStart uint64  `json:"fg_seed_start"`
	FgBlending  float64 `json:"fg_blending_ratio"`

	SOCenterBox    bool    `json:"so_center_box"`
	SOFloorPadding float64 `json:"so_floor_padding"`

	LossScale     float64 `json:"loss_scale"`
	LossThreshold float64 `json:"loss_threshold"`
	MaxIter       []int   `json:"max_iter"`
	MaxIndexStep  int     `json:"max_index_step"`
	FgTopP        float64 `json:"fg_top_p"`
	BgTopP        float64 `json:"bg_top_p"`
	FgWeight      float64 `json:"fg_weight"`
	BgWeight      float64 `json:"bg_weight"`
	// SteeringKeys are the layers whose cross-attention the steering losses
	// read (the reference's guidance_attn_keys).
	SteeringKeys []string `json:"steering_attn_keys"`
	ObjectKey    string   `json:"obj_attn_key"`
	AggStart     int      `json:"attn_aggregation_step_start"`

	MaskSigma float64 `json:"mask_gaussian_sigma"`
	MaskTau   float64 `json:"mask_threshold"`
	// SAMBox prompts SAM with the attention's box instead of its peak (the
	// reference's use_box_input; §8.1); it matters only when a SAM is given.
	SAMBox bool `json:"sam_box"`

	HorizontalShiftOnly bool    `json:"horizontal_shift_only"`
	ComposeBoxToBg      bool    `json:"compose_box_to_bg"`
	FrozenStepRatio     float64 `json:"frozen_step_ratio"`

	OverallLossScale     float64 `json:"overall_loss_scale"`
	OverallLossThreshold float64 `json:"overall_loss_threshold"`
	OverallMaxIter       []int   `json:"overall_max_iter"`
	OverallMaxIndexStep  int     `json:"overall_max_index_step"`
	OverallBgTopP        float64 `json:"overall_bg_top_p"`
	// SuppressionWeight (the reference's hidden supp = 10), RefWeight
	// (ref_ca_loss_weight = 2) and RefScale (the hidden guid = 15).
	SuppressionWeight float64 `json:"suppression_weight"`
	RefWeight         float64 `json:"ref_ca_loss_weight"`
	RefScale          float64 `json:"ref_ca_scale"`
	RefEps            float64 `json:"ref_ca_eps"`

	// RemeasureLoss re-measures the loss at the start of each step instead of
	// carrying the last measured loss over (the reference stops all steering once
	// a measured loss reaches the threshold, §14.9).
	RemeasureLoss bool `json:"remeasure_loss"`

	// SDXLStepRatio is the strength of the SDXL refiner pass that --sdxl runs
	// after the overall run (§11.2; see sdxl.go).
	SDXLStepRatio float64 `json:"sdxl_step_ratio"`
	// BatchObjects runs the single-object runs as one batch (CFG at batch
	// 2n, the steering iterations batched over the objects still iterating),
	// the default; false runs them one by one. Both give the same result
	// (within float rounding): the batch is faster on a GPU, one by one holds
	// less memory. A run.json or bench.json without the key ran one by one
	// (see addedKeys).
	BatchObjects bool `json:"batch_objects"`
}

// schedule is [4]*5 + [3]*5 + [2]*10 + [1]*10.
func schedule() []int {
	var s []int
	for _, p := range []struct{ n, v int }{{5, 4}, {5, 3}, {10, 2}, {10, 1}} {
		for i := 0; i < p.n; i++ {
			s = append(s, p.v)
		}
	}
	return s
}

// Default is the authors' published run: SD 2.1-base, DDIM 50 steps, CFG 7.5,
// 512×512, frozen_step_ratio 0.5, no box scaling.
func Default() Config {
	return Config{
		Steps: 50, Guidance: 7.5, Scheduler: "ddim", Width: 512, Height: 512,
		SONegative:      "artifacts, blurry, smooth texture, bad quality, distortions, unrealistic, distorted image, bad proportions, duplicate, two, many, group, occlusion, occluded, side, border, collate",
		OverallNegative: "artifacts, blurry, smooth texture, bad quality, distortions, unrealistic, distorted image, bad proportions, duplicate",
		SAA:             true, ReferenceConstraint: true, Suppression: true,
		BgSeed: 1, FgSeedStart: 20, FgBlending: 0.01,
		SOCenterBox: true, SOFloorPadding: 0.2,
		LossScale: 5, LossThreshold: 5, MaxIter: schedule(), MaxIndexStep: 30,
		FgTopP: 0.2, BgTopP: 0.2, FgWeight: 1, BgWeight: 4,
		SteeringKeys: []string{"mid.0.0.0", "up.1.0.0", "up.1.1.0", "up.1.2.0"}, ObjectKey: "down.2.1.0", AggStart: 10,
		MaskSigma: 1.5, MaskTau: 0.25,
		ComposeBoxToBg: true, FrozenStepRatio: 0.5,
		OverallLossScale: 5, OverallLossThreshold: 5, OverallMaxIter: schedule(), OverallMaxIndexStep: 30, OverallBgTopP: 0.2,
		SuppressionWeight: 10, RefWeight: 2, RefScale: 15, RefEps: 1e-5,
		SDXLStepRatio: 0.3, // the CLI's default; the reference helper's own 0.5 is never used
		BatchObjects:  true,
	}
}

// LoadConfig reads a JSON file over Default(); keys it lacks keep their
// defaults. The file holds the keys, or is the output of --print-config
// (see ExplainedConfig).
func LoadConfig(path string) (Config, error) {
	c := Default()
	raw, err := regular.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("rfnet: config: %w", err)
	}
	if err := decodeConfig(unwrapExplained(raw), &c, true); err != nil {
		return c, fmt.Errorf("rfnet: config %s: %w", path, err)
	}
	return c, c.Validate()
}

// ParseConfig reads a JSON object of settings over Default(), as LoadConfig
// reads a file (unknown keys refused, old names read), and validates it:
// serve's "settings" of a job.
func ParseConfig(raw []byte) (Config, error) {
	c := Default()
	if err := decodeConfig(unwrapExplained(raw), &c, true); err != nil {
		return c, fmt.Errorf("rfnet: config: %w", err)
	}
	return c, c.Validate()
}

// KeyError is a configuration error of one key: a value out of its range
// (Validate), of the wrong JSON type or a key Config lacks (the strict
// decoding of LoadConfig and ParseConfig). Key is the key's name, with an
// index for a list's element (max_iter[3]), for callers that report it
// apart, as a server's error names the field.
type KeyError struct {
	Key string
	Err error // says what is wrong, starting with the key
}

// Error is Err's message: the key's name starts it already.

func (e *KeyError) Error() string { return e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// Bounds past which a value is no setting but a mistake that runs out of
// memory or time: the mask's Gaussian kernel is 8σ+1 cells wide (a latent grid
// is 64 cells at 512²), and each steering iteration is a forward and backward
// UNet pass (the published run does at most 4 per step).
const (
	maxMaskSigma          = 64
	maxSteeringIterations = 1000
)

// Validate checks the numbers: every float is finite (a NaN guidance scale
// used to run a whole generation into a black image), and each is in its range.
func (c Config) Validate() error {
	for _, f := range []struct {
		key            string
		v              float64
		lo, hi         float64
		loOpen, hiOpen bool // the bound itself is outside
	}{
		{"guidance_scale", c.Guidance, 0, math.MaxFloat64, false, false},
		{"fg_blending_ratio", c.FgBlending, 0, 1, false, false},
		{"so_floor_padding", c.SOFloorPadding, 0, 1, false, false},
		{"loss_scale", c.LossScale, 0, math.MaxFloat64, false, false},
		{"loss_threshold", c.LossThreshold, 0, math.MaxFloat64, false, false},
		{"fg_weight", c.FgWeight, 0, math.MaxFloat64, false, false},
		{"bg_weight", c.BgWeight, 0, math.MaxFloat64, false, false},
		{"mask_gaussian_sigma", c.MaskSigma, 0, maxMaskSigma, false, false},
		{"frozen_step_ratio", c.FrozenStepRatio, 0, 1, false, false},
		{"fg_top_p", c.FgTopP, 0, 1, true, false},
		{"bg_top_p", c.BgTopP, 0, 1, true, false},
		{"overall_bg_top_p", c.OverallBgTopP, 0, 1, true, false},
		{"mask_threshold", c.MaskTau, 0, 1, true, true},
		{"overall_loss_scale", c.OverallLossScale, 0, math.MaxFloat64, false, false},
		{"overall_loss_threshold", c.OverallLossThreshold, 0, math.MaxFloat64, false, false},
		{"suppression_weight", c.SuppressionWeight, 0, math.MaxFloat64, false, false},
		{"ref_ca_loss_weight", c.RefWeight, 0, math.MaxFloat64, false, false},
		{"ref_ca_scale", c.RefScale, 0, math.MaxFloat64, false, false},
		{"ref_ca_eps", c.RefEps, 0, math.MaxFloat64, true, false}, // divides: 0 gives NaN
		// 0 passes here, so that a run.json written before the key decodes and
		// checks; the refiner pass itself wants more (SDXLRequest).
		{"sdxl_step_ratio", c.SDXLStepRatio, 0, 1, false, false},
	} {
		out := math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < f.lo || f.v > f.hi ||
			(f.loOpen && f.v == f.lo) || (f.hiOpen && f.v == f.hi)
		if !out {
			continue
		}
		want := fmt.Sprintf("a finite number, %g or more", f.lo)
		if f.hi != math.MaxFloat64 {
			open, close := "[", "]"
			if f.loOpen {
				open = "("
			}
			if f.hiOpen {
				close = ")"
			}
			want = fmt.Sprintf("%s%g, %g%s", open, f.lo, f.hi, close)
		}
		return fmt.Errorf("rfnet: config: %w", &KeyError{Key: f.key, Err: fmt.Errorf("%s %v: want %s", f.key, f.v, want)})
	}
	for _, l := range []struct {
		key string
		v   []int
	}{{"max_iter", c.MaxIter}, {"overall_max_iter", c.OverallMaxIter}} {
		for i, n := range l.v {
			if n < 0 || n > maxSteeringIterations {
				return fmt.Errorf("rfnet: config: %w", &KeyError{Key: fmt.Sprintf("%s[%d]", l.key, i), Err: fmt.Errorf("%s[%d] is %d: want 0 to %d", l.key, i, n, maxSteeringIterations)})
			}
		}
	}
	for _, side := range []struct {
		key string
		v   int
	}{{"width", c.Width}, {"height", c.Height}} {
		if err := pipeline.CheckSide(side.key, side.v); err != nil {
			return fmt.Errorf("rfnet: config: %w", &KeyError{Key: side.key, Err: err})
		}
	}
	switch {
	case c.Steps < 1:
		return fmt.Errorf("rfnet: config: %w", &KeyError{Key: "num_inference_steps", Err: fmt.Errorf("num_inference_steps %d: want 1 or more", c.Steps)})
	case c.MaxIndexStep < 0 || c.OverallMaxIndexStep < 0 || c.AggStart < 0:
		return fmt.Errorf("rfnet: config: max_index_step, overall_max_index_step and attn_aggregation_step_start must be 0 or more")
	case len(c.SteeringKeys) == 0:
		return fmt.Errorf("rfnet: config: %w", &KeyError{Key: "steering_attn_keys", Err: errors.New("steering_attn_keys is empty")})
	}
	return nil
}

// frozenSteps is floor(steps · frozen_step_ratio).
func (c Config) frozenSteps() int { return int(float64(c.Steps) * c.FrozenStepRatio) }

// maxIter is the iteration budget at step i: the schedule's entry, or its last one past the end.
func maxIter(schedule []int, i int) int {
	if len(schedule) == 0 {
		return 0
	}
	return schedule[min(i, len(schedule)-1)]
}
