package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/internal/timeline"
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
		// The stages are disjoint spans inside the scene's: they never add
		// up to more than it, and other_ms is the rest. How small the rest
		// is depends on the machine's load, so it is not asserted here;
		// TestSceneStages checks the accounting exactly.
		if !(sum <= s.SceneMS*(1+1e-9)) || math.Abs(s.OtherMS-(s.SceneMS-sum)) > 1e-6 {
			t.Errorf("%s: stages add up to %.3f ms, the scene took %.3f, other %.3f", name, sum, s.SceneMS, s.OtherMS)
		}
		if s.ObjectGuidance.TotalMS >= s.ObjectsMS || s.OverallGuidance.TotalMS >= s.OverallMS || !(s.PeakMiB > 0) {
			t.Errorf("%s: %+v", name, s)
		}
	}
}

// sceneStages on made-up timelines, one per way of running the objects:
// each span lands in exactly one stage, the work nested in a run (its
// decodes, masks and composition) is taken out of the run's time, and
// other_ms is exactly what no stage holds.
func TestSceneStages(t *testing.T) {
	span := func(name string, ms float64, parent int, args ...any) timeline.SpanRecord {
		r := timeline.SpanRecord{Name: name, Seconds: ms / 1e3, Parent: parent, Args: map[string]any{}}
		for i := 0; i+1 < len(args); i += 2 {
			r.Args[args[i].(string)] = args[i+1]
		}
		return r
	}
	for _, c := range []struct {
		name     string
		spans    []timeline.SpanRecord
		pictures time.Duration
		want     sceneTiming
	}{{
		name: "one by one",
		spans: []timeline.SpanRecord{
			span("rfnet", 100, -1),
			span("prompts", 10, 0), span("text encoder", 6, 1),
			span("object", 30, 0, "index", 0),
			span("denoise step", 12, 3), span("steering iteration", 5, 4), span("steering iteration", 4, 4),
			span("vae decode", 6, 3), span("mask and alignment", 3, 3),
			span("overall", 40, 0), span("compose", 2, 9), span("steering iteration", 7, 9),
			span("vae decode", 8, 0),
		},
		pictures: 3 * time.Millisecond,
		want: sceneTiming{SceneMS: 100, PromptsMS: 10, ObjectsMS: 21, MasksMS: 5, OverallMS: 38, DecodeMS: 17, OtherMS: 9,
			ObjectGuidance: passStats{Count: 2, TotalMS: 9, MedianMS: 5}, OverallGuidance: passStats{Count: 1, TotalMS: 7, MedianMS: 7},
			GuidanceMedianMS: 5, IterationsPerRun: []int{2, 1}},
	}, {
		name: "batched, arguments as JSON reads them",
		spans: []timeline.SpanRecord{
			span("rfnet", 100, -1),
			span("prompts", 10, 0),
			span("objects", 50, 0, "batch", 2.0),
			span("steering iteration", 6, 2, "objects", []any{0.0, 1.0}), span("steering iteration", 3, 2, "objects", []any{1.0}),
			span("object", 8, 2, "index", 0), span("vae decode", 4, 5), span("mask and alignment", 2, 5),
			span("object", 8, 2, "index", 1), span("vae decode", 4, 8), span("mask and alignment", 2, 8),
			span("overall", 20, 0), span("steering iteration", 5, 11),
			span("vae decode", 5, 0),
		},
		want: sceneTiming{SceneMS: 100, PromptsMS: 10, ObjectsMS: 38, MasksMS: 4, OverallMS: 20, DecodeMS: 13, OtherMS: 15,
			ObjectGuidance: passStats{Count: 2, TotalMS: 9, MedianMS: 6}, OverallGuidance: passStats{Count: 1, TotalMS: 5, MedianMS: 5},
			GuidanceMedianMS: 5, IterationsPerRun: []int{1, 2, 1}},
	}} {
		got := sceneStages(c.spans, map[string]time.Duration{"pictures": c.pictures})
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
		w := c.want
		for _, f := range []struct {
			field     string
			got, want float64
		}{
			{"scene", got.SceneMS, w.SceneMS}, {"prompts", got.PromptsMS, w.PromptsMS}, {"objects", got.ObjectsMS, w.ObjectsMS},
			{"masks", got.MasksMS, w.MasksMS}, {"overall", got.OverallMS, w.OverallMS}, {"decode", got.DecodeMS, w.DecodeMS},
			{"other", got.OtherMS, w.OtherMS}, {"object passes", got.ObjectGuidance.TotalMS, w.ObjectGuidance.TotalMS},
			{"object pass median", got.ObjectGuidance.MedianMS, w.ObjectGuidance.MedianMS},
			{"overall passes", got.OverallGuidance.TotalMS, w.OverallGuidance.TotalMS},
			{"overall pass median", got.OverallGuidance.MedianMS, w.OverallGuidance.MedianMS},
			{"pass median", got.GuidanceMedianMS, w.GuidanceMedianMS},
		} {
			if !near(f.got, f.want) {
				t.Errorf("%s: %s = %v ms, want %v", c.name, f.field, f.got, f.want)
			}
		}
		if got.ObjectGuidance.Count != w.ObjectGuidance.Count || got.OverallGuidance.Count != w.OverallGuidance.Count ||
			!slices.Equal(got.IterationsPerRun, w.IterationsPerRun) {
			t.Errorf("%s: passes %+v %+v, iterations per run %v; want %+v %+v, %v", c.name, got.ObjectGuidance, got.OverallGuidance,
				got.IterationsPerRun, w.ObjectGuidance, w.OverallGuidance, w.IterationsPerRun)
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
