package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// bench-engine times every stage on the tiny model and writes a report with
// one positive timing per stage.
func TestBenchEngine(t *testing.T) {
	out := filepath.Join(t.TempDir(), "engine.json")
	stdout := captureStdout(t, func() error {
		return run([]string{"bench-engine", "--weights", fixtures.Path("models", "tiny-sd1"), "--size", "8", "--iters", "2", "--steps", "2", "--json", out})
	})
	if !strings.Contains(stdout, "unet, batch 2") {
		t.Fatalf("table:\n%s", stdout)
	}
	r := readEngineReport(t, out)
	if len(r.Timings) != 5 || r.Latent != 8 || !strings.HasPrefix(r.Device, "cpu") {
		t.Fatalf("report %+v", r)
	}
	for _, s := range r.Timings {
		if !(s.MedianMS > 0) || s.MinMS > s.MedianMS {
			t.Errorf("%s: median %v ms, min %v ms", s.Name, s.MedianMS, s.MinMS)
		}
	}
}

func TestBenchEngineRejectsUnknownModel(t *testing.T) {
	err := run([]string{"bench-engine", "--model", "sd3", "--iters", "1"})
	if err == nil || !strings.Contains(err.Error(), `--model "sd3"`) {
		t.Fatalf("err = %v", err)
	}
}

// --profile times kernels; the CPU backend has none, which it says before loading anything.
func TestBenchEngineProfileNeedsCUDA(t *testing.T) {
	err := run([]string{"bench-engine", "--weights", fixtures.Path("models", "tiny-sd1"), "--profile"})
	if err == nil || !strings.Contains(err.Error(), "--profile") || !strings.Contains(err.Error(), "--device cuda") {
		t.Fatalf("err = %v", err)
	}
}

// readEngineReport reads the --json report of bench-engine.
func readEngineReport(t *testing.T, path string) engineReport {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r engineReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// bench-engine --rfnet runs the built-in scenes on the tiny model: the forced
// setting steers every run the schedule's whole budget (§7.3, computed for
// the steps used), and the stages, each positive, add up to the scene; with
// the objects as one batch (the default), where a batched guidance pass
// counts once, and one by one.
func TestBenchEngineRFNetScenes(t *testing.T) {
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch_objects=%v", batch), func(t *testing.T) { testBenchEngineRFNetScenes(t, batch) })
	}
}

func testBenchEngineRFNetScenes(t *testing.T, batch bool) {
	dir := t.TempDir()
	out := filepath.Join(dir, "rfnet.json")
	config := filepath.Join(dir, "config.json")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`{"batch_objects": %v}`, batch)), 0o644); err != nil {
		t.Fatal(err)
	}
	const steps = 4
	stdout := captureStdout(t, func() error {
		return run([]string{"bench-engine", "--rfnet", "--weights", fixtures.Path("models", "tiny-sd2"), "--device", "cpu",
			"--size", "8", "--steps", strconv.Itoa(steps), "--objects", "1,2", "--rfnet-config", config, "--json", out})
	})
	if !strings.Contains(stdout, "iterations per run") {
		t.Fatalf("table:\n%s", stdout)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r rfnetReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Width != 64 || r.Steps != steps || len(r.Scenes) != 4 || r.Peak == "" || r.BatchObjects != batch {
		t.Fatalf("report %+v", r)
	}
	cfg := rfnet.Default()
	cfg.Steps = steps
	object, overall := cfg.SteeringBudget()
	for _, s := range r.Scenes {
		name := fmt.Sprintf("%d objects, %s", s.Objects, s.Setting)
		if len(s.IterationsPerRun) != s.Objects+1 {
			t.Errorf("%s: iterations per run %v", name, s.IterationsPerRun)
			continue
		}
		if s.Setting == "forced" {
			for i, n := range s.IterationsPerRun {
				if want := map[bool]int{true: overall, false: object}[i == s.Objects]; n != want {
					t.Errorf("%s: run %d steered %d times, want %d", name, i, n, want)
				}
			}
			passes := s.Objects * object
			if batch {
				passes = object // every object steers the whole budget: each pass is all of them
			}
			if s.ObjectGuidance.Count != passes || s.OverallGuidance.Count != overall {
				t.Errorf("%s: guidance passes %+v, %+v", name, s.ObjectGuidance, s.OverallGuidance)
			}
		}
		stages := []float64{s.PromptsMS, s.ObjectsMS, s.MasksMS, s.OverallMS, s.DecodeMS, s.ObjectGuidance.TotalMS, s.OverallGuidance.TotalMS, s.GuidanceMedianMS}
		sum := s.PromptsMS + s.ObjectsMS + s.MasksMS + s.OverallMS + s.DecodeMS
		for i, v := range stages {
			if !(v > 0) {
				t.Errorf("%s: stage %d is %v ms", name, i, v)
			}
		}
		if d := math.Abs(sum - s.SceneMS); !(d <= 0.03*s.SceneMS) {
			t.Errorf("%s: stages add up to %.1f ms, the scene took %.1f", name, sum, s.SceneMS)
		}
		if s.ObjectGuidance.TotalMS >= s.ObjectsMS || s.OverallGuidance.TotalMS >= s.OverallMS || !(s.PeakMiB > 0) {
			t.Errorf("%s: %+v", name, s)
		}
	}
}

// --rfnet's flags are checked before any weights are built.
func TestBenchEngineRFNetRejectsBadFlags(t *testing.T) {
	tiny := fixtures.Path("models", "tiny-sd2")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--objects", "1,5"}, "--objects"},
		{[]string{"--rfnet-setting", "always"}, "--rfnet-setting"},
		{[]string{"--iters", "3"}, "--iters"},
		{[]string{"--steps", "0"}, "--steps 0"},
		{[]string{"--model", "sd15"}, "--tokenizer"},
	} {
		args := append([]string{"bench-engine", "--rfnet", "--device", "cpu"}, c.args...)
		if c.want != "--tokenizer" {
			args = append(args, "--weights", tiny)
		}
		if err := run(args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want one naming %s", c.args, err, c.want)
		}
	}
}
