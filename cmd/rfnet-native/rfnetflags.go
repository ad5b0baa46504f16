package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// rfnetFlags are generate's flags for the RFNet settings people change most,
// each over the key it names in --rfnet-config (see rfnetSettings), with
// --print-config and --allow-v. The flags that set a pair of keys set the
// single-object runs' and the overall run's alike; the config file sets them
// apart.
type rfnetFlags struct {
	printConfig, allowV, samBox, batchObjects bool
	sam                                       string
	frozenStepRatio, lossThreshold, lossScale float64
	suppressionWeight, referenceWeight        float64
	steeredSteps                              int
	maxIter                                   string
}

func (f *rfnetFlags) register(fs *pflag.FlagSet) {
	d := rfnet.Default()
	fs.BoolVar(&f.printConfig, "print-config", false, "rfnet: print the effective configuration (defaults, then --rfnet-config, then flags) as JSON with a line on each key, and exit; the output is a valid --rfnet-config file")
	fs.BoolVar(&f.allowV, "allow-v", false, "rfnet: run on a v-prediction model (SD 2.x 768), which the reference does not support")
	fs.StringVar(&f.sam, "sam", "", "rfnet: cut each object's mask with Segment Anything (§8.1): a SamModel folder or a Hub name such as sam-vit-base (default: facebook/sam-vit-base when the Hugging Face cache has it, else the attention mask of §8.2)")
	fs.BoolVar(&f.samBox, "sam-box", d.SAMBox, "rfnet: prompt SAM with the attention's box instead of its peak (sam_box)")
	fs.Float64Var(&f.frozenStepRatio, "frozen-step-ratio", d.FrozenStepRatio, "rfnet: share of the overall run's steps that keep the pasted objects (frozen_step_ratio)")
	fs.IntVar(&f.steeredSteps, "steered-steps", d.MaxIndexStep, "rfnet: steps steered from the first, in every run (max_index_step and overall_max_index_step)")
	fs.Float64Var(&f.lossThreshold, "loss-threshold", d.LossThreshold, "rfnet: steering stops once the last loss is at or below it, 0: never (loss_threshold and overall_loss_threshold)")
	fs.Float64Var(&f.lossScale, "loss-scale", d.LossScale, "rfnet: factor of the steering loss before its gradient (loss_scale and overall_loss_scale)")
	fs.StringVar(&f.maxIter, "max-iter", formatSchedule(d.MaxIter), "rfnet: steering iterations per step, N or N for K steps as NxK, the last repeated (max_iter and overall_max_iter)")
	fs.Float64Var(&f.suppressionWeight, "suppression-weight", d.SuppressionWeight, "rfnet: weight of the suppression constraint (suppression_weight)")
	fs.Float64Var(&f.referenceWeight, "reference-weight", d.RefWeight, "rfnet: weight of the reference constraint (ref_ca_loss_weight)")
	fs.BoolVar(&f.batchObjects, "batch-objects", d.BatchObjects, "rfnet: run the single-object runs as one batch, faster on a GPU; --batch-objects=false runs them one by one, with less memory (batch_objects)")
}

// settings are the flags that set keys of the configuration, in the order
// they apply, each with how.
func (f *rfnetFlags) settings() []struct {
	flag string
	set  func(*rfnet.Config) error
} {
	return []struct {
		flag string
		set  func(*rfnet.Config) error
	}{
		{"frozen-step-ratio", func(c *rfnet.Config) error { c.FrozenStepRatio = f.frozenStepRatio; return nil }},
		{"steered-steps", func(c *rfnet.Config) error {
			c.MaxIndexStep, c.OverallMaxIndexStep = f.steeredSteps, f.steeredSteps
			return nil
		}},
		{"loss-threshold", func(c *rfnet.Config) error {
			c.LossThreshold, c.OverallLossThreshold = f.lossThreshold, f.lossThreshold
			return nil
		}},
		{"loss-scale", func(c *rfnet.Config) error { c.LossScale, c.OverallLossScale = f.lossScale, f.lossScale; return nil }},
		{"max-iter", func(c *rfnet.Config) error {
			s, err := parseSchedule(f.maxIter)
			c.MaxIter, c.OverallMaxIter = s, slices.Clone(s)
			return err
		}},
		{"suppression-weight", func(c *rfnet.Config) error { c.SuppressionWeight = f.suppressionWeight; return nil }},
		{"reference-weight", func(c *rfnet.Config) error { c.RefWeight = f.referenceWeight; return nil }},
		{"sam-box", func(c *rfnet.Config) error { c.SAMBox = f.samBox; return nil }},
		{"batch-objects", func(c *rfnet.Config) error { c.BatchObjects = f.batchObjects; return nil }},
	}
}

// names are every flag of f, which --method sd refuses.
func (f *rfnetFlags) names() []string {
	names := []string{"print-config", "allow-v", "sam"}
	for _, s := range f.settings() {
		names = append(names, s.flag)
	}
	return names
}

// apply sets on c the keys of the flags the user gave. Each is checked as
// the configuration is (Validate) right after it is set, so an error names
// the flag that caused it.
func (f *rfnetFlags) apply(changed func(string) bool, c *rfnet.Config) error {
	for _, s := range f.settings() {
		if !changed(s.flag) {
			continue
		}
		if err := s.set(c); err != nil {
			return fmt.Errorf("--%s: %w", s.flag, err)
		}
		if err := c.Validate(); err != nil {
			return fmt.Errorf("--%s: %w", s.flag, err)
		}
	}
	return nil
}

// parseSchedule reads an iteration schedule: comma-separated entries, each
// N (N iterations at one step) or NxK (N iterations at each of K steps), so
// the default is 4x5,3x5,2x10,1x10.
func parseSchedule(s string) ([]int, error) {
	var out []int
	for _, entry := range strings.Split(s, ",") {
		n, k, repeated := strings.Cut(strings.TrimSpace(entry), "x")
		iters, err := strconv.Atoi(n)
		steps := 1
		if err == nil && repeated {
			steps, err = strconv.Atoi(k)
		}
		if err != nil || iters < 0 || steps < 1 {
			return nil, fmt.Errorf("entry %q: want N or NxK (N iterations, 0 or more, at each of K steps, 1 or more)", entry)
		}
		for range steps {
			out = append(out, iters)
		}
	}
	return out, nil
}

// formatSchedule writes a schedule as parseSchedule reads it, runs of one
// value as NxK.
func formatSchedule(s []int) string {
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if j-i == 1 {
			parts = append(parts, strconv.Itoa(s[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%dx%d", s[i], j-i))
		}
		i = j
	}
	return strings.Join(parts, ",")
}
