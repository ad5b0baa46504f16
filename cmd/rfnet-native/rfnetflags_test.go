package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// settingsOf parses generate's flags and returns the RFNet settings they make.
func settingsOf(t *testing.T, args ...string) (rfnet.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	g := &generateFlags{}
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return g.rfnetSettings(fs)
}

// The schedule flag reads N and NxK entries, and the default reads back as
// the default schedule.
func TestParseSchedule(t *testing.T) {
	d := rfnet.Default().MaxIter
	if got, err := parseSchedule(formatSchedule(d)); err != nil || !slices.Equal(got, d) || formatSchedule(d) != "4x5,3x5,2x10,1x10" {
		t.Fatalf("the default %q reads as %v, %v", formatSchedule(d), got, err)
	}
	if got, err := parseSchedule("2x2, 0,1"); err != nil || !slices.Equal(got, []int{2, 2, 0, 1}) {
		t.Errorf("2x2, 0,1: %v, %v", got, err)
	}
	for _, bad := range []string{"", "x3", "2x0", "-1", "2x", "two"} {
		if _, err := parseSchedule(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// The settings flags go over --rfnet-config, which goes over the defaults;
// a flag that sets a pair of keys sets both, and a bad value is refused
// with the flag named.
func TestRFNetSettingsLayerFlagsOverConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg.json")
	os.WriteFile(path, []byte(`{"frozen_step_ratio": 0.4, "loss_threshold": 3, "overall_loss_threshold": 2, "suppression_weight": 7}`), 0o644)
	c, err := settingsOf(t, "--rfnet-config", path, "--loss-threshold", "0", "--max-iter", "2x3,1", "--steered-steps", "4",
		"--loss-scale", "2", "--reference-weight", "3")
	if err != nil {
		t.Fatal(err)
	}
	if c.FrozenStepRatio != 0.4 || c.SuppressionWeight != 7 {
		t.Errorf("the file's keys without a flag: frozen_step_ratio %v, suppression_weight %v; want 0.4 and 7", c.FrozenStepRatio, c.SuppressionWeight)
	}
	if c.LossThreshold != 0 || c.OverallLossThreshold != 0 || c.LossScale != 2 || c.OverallLossScale != 2 || c.RefWeight != 3 ||
		c.MaxIndexStep != 4 || c.OverallMaxIndexStep != 4 || !slices.Equal(c.MaxIter, []int{2, 2, 2, 1}) || !slices.Equal(c.OverallMaxIter, c.MaxIter) {
		t.Errorf("the flags did not set their keys: %+v", c)
	}
	if c, err := settingsOf(t, "--frozen-step-ratio", "0.25", "--suppression-weight", "1"); err != nil || c.FrozenStepRatio != 0.25 || c.SuppressionWeight != 1 || c.LossThreshold != 5 {
		t.Errorf("over the defaults: %v %+v", err, c)
	}
	for _, bad := range [][]string{{"--frozen-step-ratio", "2"}, {"--loss-threshold", "-1"}, {"--steered-steps", "-1"}, {"--max-iter", "4,x"}, {"--loss-scale", "NaN"}} {
		if _, err := settingsOf(t, bad...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: error %v, want one naming the flag", bad, err)
		}
	}
}

// --print-config prints JSON with a line on each key and exits before any
// model loads; fed back through --rfnet-config it prints the same.
func TestPrintConfigRoundTrips(t *testing.T) {
	print := func(args ...string) string {
		t.Helper()
		return captureStdout(t, func() error {
			return run(append([]string{"generate", "--weights", "nowhere", "--print-config"}, args...))
		})
	}
	first := print("--frozen-step-ratio", "0.3", "--max-iter", "1x30", "--no-suppression-constraint", "--steps", "20")
	var printed struct {
		Config  rfnet.Config      `json:"config"`
		Explain map[string]string `json:"explain"`
	}
	if err := json.Unmarshal([]byte(first), &printed); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, first)
	}
	if c := printed.Config; c.FrozenStepRatio != 0.3 || len(c.MaxIter) != 30 || c.Suppression || c.Steps != 20 || printed.Explain["frozen_step_ratio"] == "" {
		t.Errorf("printed %+v", printed)
	}
	path := filepath.Join(t.TempDir(), "printed.json")
	os.WriteFile(path, []byte(first), 0o644)
	if again := print("--rfnet-config", path); again != first {
		t.Errorf("read back through --rfnet-config, it prints\n%s\nnot\n%s", again, first)
	}
}

// RFNet refuses a v-prediction model with the reason and the way past it,
// before the LLM is asked; --allow-v runs it.
func TestRFNetRefusesVPrediction(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	dir := t.TempDir()
	args := []string{"generate", "--weights", fixtures.Path("models", "tiny-sd2-v"), "--prompt", "a mouse hunting a lion", "--width", "64", "--height", "64",
		"--steps", "1", "--out-dir", dir, "--quiet", "--llm-base-url", s.BaseURL(), "--llm-api-key", "k", "--llm-cache", ""}
	err := run(args)
	for _, want := range []string{"predicts v", "epsilon models only", "§14.12", "--allow-v"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want one with %q", err, want)
		}
	}
	if len(s.Requests()) != 0 {
		t.Errorf("the LLM was asked before the refusal")
	}
	if err := run(append(args, "--allow-v")); err != nil {
		t.Fatalf("--allow-v: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "image.png")); err != nil {
		t.Fatal(err)
	}
}

// traceRow is a line of trace.jsonl with the fields the tests read.
type traceRow struct {
	Stage                   string
	Object, Step, Iteration *int
	Timestep                *float64
	StepSize                *float64 `json:"step_size"`
	Loss                    *float64
	LossAfter               *float64 `json:"loss_after"`
	LossAfterFrom           string   `json:"loss_after_from"`
	GradNorm                *float64 `json:"grad_norm"`
	Suppression, Reference  *float64
	Why                     string
}

// readTrace reads dir's trace.jsonl, the timing rows left out, and checks
// that every step of every run has steering iterations or one row saying
// why it has none, never both.
func readTrace(t *testing.T, dir string, runs, steps int) []traceRow {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "trace.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []traceRow
	type stepOf struct{ run, step int }
	iterations, whys := map[stepOf]int{}, map[stepOf]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e traceRow
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("trace line %q: %v", line, err)
		}
		if e.Stage == "timing" {
			continue
		}
		run := -1 // the overall run
		if e.Object != nil {
			run = *e.Object
		}
		k := stepOf{run, *e.Step}
		if e.Why != "" {
			whys[k]++
		} else {
			iterations[k]++
		}
		rows = append(rows, e)
	}
	for run := -1; run < runs-1; run++ {
		for i := 0; i < steps; i++ {
			k := stepOf{run, i}
			if (iterations[k] > 0) == (whys[k] > 0) || whys[k] > 1 {
				t.Errorf("run %d step %d: %d iterations and %d why rows, want iterations or one why row", run, i, iterations[k], whys[k])
			}
		}
	}
	return rows
}

// A default run traces a why row for every step it did not steer.
func TestRFNetTraceExplainsUnsteeredSteps(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	dir := t.TempDir()
	if err := run(rfnetArgs(dir, "--llm-base-url", s.BaseURL(), "--llm-api-key", "k", "--llm-cache", "")); err != nil {
		t.Fatal(err)
	}
	whys := 0
	for _, e := range readTrace(t, dir, 3, 6) {
		if e.Why != "" {
			whys++
		}
	}
	if whys == 0 { // with the tiny model the gate stops steering within the 6 steps
		t.Error("no why rows")
	}
}

// With thresholds 0 the schedule is forced: every run steers 65 times, the
// sum of the default max_iter (4·5 + 3·5 + 2·10 + 1·10, §7.3) over the 30
// steered steps, each row with the documented fields; the overall run's rows
// carry both constraints' terms, which add up to the loss. run.json records
// the thresholds the flag set.
func TestRFNetTraceForcedSchedule(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	dir := t.TempDir()
	args := rfnetArgs(dir, "--llm-base-url", s.BaseURL(), "--llm-api-key", "k", "--llm-cache", "", "--loss-threshold", "0", "--steps", "32", "--width", "64", "--height", "64")
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	perRun := map[int]int{}
	for _, e := range readTrace(t, dir, 3, 32) {
		run := -1
		if e.Object != nil {
			run = *e.Object
		}
		if e.Why != "" {
			if *e.Step < 30 || e.Why != "past_steered_steps" {
				t.Errorf("run %d step %d: why %q", run, *e.Step, e.Why)
			}
			continue
		}
		perRun[run]++
		if e.Iteration == nil || e.Timestep == nil || e.StepSize == nil || e.Loss == nil || e.LossAfter == nil || e.LossAfterFrom == "" || e.GradNorm == nil {
			t.Fatalf("run %d: row %+v lacks a documented field", run, e)
		}
		if overall := run == -1; overall != (e.Suppression != nil && e.Reference != nil) {
			t.Errorf("run %d: suppression %v, reference %v", run, e.Suppression, e.Reference)
		} else if overall {
			if d := *e.Suppression + *e.Reference - *e.Loss; d > 1e-4*(*e.Loss) || d < -1e-4*(*e.Loss) {
				t.Errorf("step %d: suppression %v + reference %v, loss %v", *e.Step, *e.Suppression, *e.Reference, *e.Loss)
			}
		}
	}
	if want := map[int]int{-1: 65, 0: 65, 1: 65}; !reflect.DeepEqual(perRun, want) {
		t.Errorf("iterations per run %v, want %v", perRun, want)
	}
	var info struct {
		Config rfnet.Config `json:"config"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "run.json"))
	if err := json.Unmarshal(raw, &info); err != nil || info.Config.LossThreshold != 0 || info.Config.OverallLossThreshold != 0 || info.Config.Steps != 32 {
		t.Errorf("run.json's config: %v %+v", err, info.Config)
	}
}
