package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/internal/timeline/timelinetest"
)

// timedRun runs a command line and returns how long it took.
func timedRun(t *testing.T, args []string) time.Duration {
	t.Helper()
	start := time.Now()
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// checkWallTime asserts that the trace's top-level host spans cover the
// command's wall time within 5%: nothing slow happens outside a span.
func checkWallTime(t *testing.T, events []timelinetest.Event, wall time.Duration) {
	t.Helper()
	top := timelinetest.TopLevel(events, timeline.HostTrack)
	if math.Abs(float64(top-wall)) > 0.05*float64(wall) {
		t.Errorf("top-level spans add up to %v, the run took %v", top, wall)
	}
}

// inside asserts that every event named child lies within an event named
// one of parents.
func inside(t *testing.T, events []timelinetest.Event, child string, parents ...string) {
	t.Helper()
	n := 0
	for _, c := range events {
		if c.Name != child {
			continue
		}
		n++
		found := false
		for _, p := range events {
			if slices.Contains(parents, p.Name) && p.TID == c.TID && p.Depth < c.Depth && p.TS <= c.TS && c.TS+c.Dur <= p.TS+p.Dur+0.01 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s at %.1fµs is inside no %s", child, c.TS, strings.Join(parents, " or "))
		}
	}
	if n == 0 {
		t.Errorf("no %s event", child)
	}
}

func TestProfileOutRFNet(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.json")
	out := filepath.Join(dir, "out")
	wall := timedRun(t, rfnetArgs(out, "--llm-base-url", s.BaseURL(), "--llm-api-key", "k", "--llm-cache", "", "--profile-out", trace))
	events := timelinetest.Read(t, trace)
	checkWallTime(t, events, wall)
	names := timelinetest.Names(events)
	// Two objects as one batch (batch_objects, the default) and the overall
	// run, 6 steps each; an object span each for its mask and picture.
	if names["objects"] != 1 || names["object"] != 2 || names["denoise step"] != 12 || names["vae decode"] != 3 || names["rfnet"] != 1 {
		t.Errorf("events by name: %v", names)
	}
	for _, e := range events {
		if slices.Contains([]string{"llm plan", "load model", "rfnet", "write artifacts"}, e.Name) && e.Depth != 0 {
			t.Errorf("%s at depth %d, want the top", e.Name, e.Depth)
		}
	}
	for _, c := range [][]string{{"saa", "prompts"}, {"prompts", "rfnet"}, {"objects", "rfnet"}, {"object", "objects"}, {"overall", "rfnet"},
		{"denoise step", "objects", "overall"}, {"steering iteration", "denoise step"}, {"unet", "denoise step"},
		{"compose", "overall"}, {"vae decode", "object", "rfnet"}} {
		inside(t, events, c[0], c[1:]...)
	}
	for _, e := range events {
		if e.Name == "steering iteration" {
			if _, ok := e.Args["loss"].(float64); !ok {
				t.Errorf("steering iteration without a loss: %v", e.Args)
			}
		}
		if e.Name == "object" && e.Args["name"] == nil {
			t.Errorf("object without a name: %v", e.Args)
		}
	}
	var info struct {
		ProfileSeconds map[string]float64 `json:"profile_seconds"`
	}
	raw, _ := os.ReadFile(filepath.Join(out, "run.json"))
	json.Unmarshal(raw, &info)
	for _, k := range []string{"rfnet", "objects", "object", "overall", "denoise step", "steering iteration", "vae decode", "saa"} {
		if info.ProfileSeconds[k] <= 0 {
			t.Errorf("run.json profile_seconds has no %q: %s", k, raw)
		}
	}
}

func TestProfileOutSD(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.json")
	wall := timedRun(t, []string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "a mouse hunting a lion",
		"--steps", "4", "--width", "64", "--height", "64", "--batch-count", "2", "--out", filepath.Join(dir, "a.png"), "--quiet", "--profile-out", trace})
	events := timelinetest.Read(t, trace)
	checkWallTime(t, events, wall)
	names := timelinetest.Names(events)
	if names["generate"] != 2 || names["denoise step"] != 8 || names["write image"] != 2 || names["load model"] != 1 {
		t.Errorf("events by name: %v", names)
	}
	inside(t, events, "denoise step", "denoise")
	inside(t, events, "vae decode", "generate")
	inside(t, events, "text encoder", "generate")
}

func TestProfileOutBench(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.json")
	wall := timedRun(t, smallBench(t, filepath.Join(dir, "run"), "--profile-out", trace))
	events := timelinetest.Read(t, trace)
	names := timelinetest.Names(events)
	if names["bench item"] != 2 || names["generate"] != 2 || names["denoise step"] != 4 {
		t.Errorf("events by name: %v", names)
	}
	inside(t, events, "generate", "bench item")
	if top := timelinetest.TopLevel(events, timeline.HostTrack); top > wall {
		t.Errorf("top-level spans add up to %v, more than the run's %v", top, wall)
	}
}

func TestProfileFlagErrors(t *testing.T) {
	dir := t.TempDir()
	sd := []string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "a cat",
		"--steps", "1", "--width", "64", "--height", "64", "--out", filepath.Join(dir, "a.png"), "--quiet"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(sd, "--profile-kernels"), "--profile-kernels adds GPU kernels to --profile-out's trace"},
		{append(sd, "--profile-out", dir), "--profile-out " + dir + " is a folder"},
		{append(sd, "--profile-out", filepath.Join(dir, "trace.json"), "--profile-kernels", "--device", "cpu"), "--profile-kernels times GPU kernels; cpu"},
		{append(sd, "--profile-out", filepath.Join(dir, "a.png")), "--out and --profile-out both write"},
		{rfnetArgs(filepath.Join(dir, "out"), "--out", filepath.Join(dir, "b.png"), "--profile-out", filepath.Join(dir, "b.png")), "--out and --profile-out both write"},
	} {
		err := run(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args[len(c.args)-2:], err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a.png")); err == nil {
		t.Error("a refused --profile-kernels still generated the image")
	}
}

// With --batch-objects the objects' runs are one "objects" span whose steps
// cover all objects; each object's decode and mask stay its own "object".
func TestProfileOutRFNetBatchedObjects(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer s.Close()
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.json")
	out := filepath.Join(dir, "out")
	timedRun(t, rfnetArgs(out, "--llm-base-url", s.BaseURL(), "--llm-api-key", "k", "--llm-cache", "", "--profile-out", trace, "--batch-objects"))
	events := timelinetest.Read(t, trace)
	names := timelinetest.Names(events)
	if names["objects"] != 1 || names["object"] != 2 || names["denoise step"] != 12 || names["vae decode"] != 3 {
		t.Errorf("events by name: %v", names)
	}
	for _, c := range [][]string{{"objects", "rfnet"}, {"object", "objects"}, {"denoise step", "objects", "overall"},
		{"steering iteration", "denoise step"}, {"vae decode", "object", "rfnet"}} {
		inside(t, events, c[0], c[1:]...)
	}
	for _, e := range events {
		if _, ok := e.Args["loss"].(float64); e.Name == "steering iteration" && !ok {
			t.Errorf("steering iteration without a loss: %v", e.Args)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(out, "run.json"))
	if !strings.Contains(string(raw), `"batch_objects": true`) {
		t.Errorf("run.json does not record batch_objects: true")
	}
}
