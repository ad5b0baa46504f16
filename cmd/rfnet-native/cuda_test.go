//go:build cuda

package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/internal/timeline/timelinetest"
)

// The commands with --device cuda --dtype fp16 on the tiny SD 1.x model, on a
// GPU or the CUDA emulator (make test-emu): plain generation (also with the
// default --device auto and --dtype auto), an RFNet run
// with the offline planner (guidance backward on the device), and
// bench-engine timed by CUDA events. Skipped without a GPU, unless
// RFNET_REQUIRE_GPU is set.
func TestCommandsOnGPU(t *testing.T) {
	fixtures.GPU(t)
	weights := fixtures.Path("models", "tiny-sd1")
	gpu := []string{"--device", "cuda", "--dtype", "fp16"}

	t.Run("generate", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "a.png")
		err := run(append([]string{"generate", "--method", "sd", "--weights", weights, "--prompt", "a mouse hunting a lion",
			"--steps", "3", "--width", "64", "--height", "64", "--out", out, "--quiet"}, gpu...))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(out)
		if img, err := png.Decode(bytes.NewReader(data)); err != nil || img.Bounds().Dx() != 64 {
			t.Fatalf("png: %v", err)
		}
	})

	// No --device or --dtype: auto takes the GPU, in fp16.
	t.Run("auto", func(t *testing.T) {
		t.Setenv(deviceEnv, "")
		out := filepath.Join(t.TempDir(), "a.png")
		err := run([]string{"generate", "--method", "sd", "--weights", weights, "--prompt", "a mouse hunting a lion",
			"--steps", "2", "--width", "64", "--height", "64", "--out", out, "--quiet"})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(strings.TrimSuffix(out, ".png") + ".json")
		if !bytes.Contains(raw, []byte(`"device": "cuda:`)) || !bytes.Contains(raw, []byte(`"dtype": "f16"`)) {
			t.Fatalf("--device auto did not run on the GPU in fp16:\n%s", raw)
		}
	})

	t.Run("rfnet", func(t *testing.T) {
		t.Setenv("OPENAI_API_KEY", "")
		t.Setenv("OPENAI_BASE_URL", "")
		dir := t.TempDir()
		err := run(append([]string{"generate", "--weights", weights, "--prompt", "a mouse hunting a lion",
			"--steps", "3", "--width", "64", "--height", "64", "--out-dir", dir, "--quiet"}, gpu...))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(filepath.Join(dir, "run.json"))
		if !bytes.Contains(raw, []byte(`"device": "cuda:`)) || !bytes.Contains(raw, []byte(`"dtype": "f16"`)) {
			t.Fatalf("run.json does not record the device and dtype:\n%s", raw)
		}
		if fi, err := os.Stat(filepath.Join(dir, "image.png")); err != nil || fi.Size() == 0 {
			t.Fatalf("image.png: %v", err)
		}
	})

	t.Run("bench-engine", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "engine.json")
		stdout := captureStdout(t, func() error {
			return run(append([]string{"bench-engine", "--weights", weights, "--size", "8", "--iters", "2", "--steps", "2", "--profile", "--json", out}, gpu...))
		})
		r := readEngineReport(t, out)
		// The CPU's five calls, the UNet call's and the guidance pass's
		// graph replays, and the guidance pass on the other
		// convolution-gradient path.
		if len(r.Timings) != 8 || !strings.HasPrefix(r.Device, "cuda:") || r.DType != "f16" || !strings.Contains(r.Timer, "CUDA events") ||
			!strings.HasPrefix(r.Timings[4].Name, replayedGuidance) || !strings.HasPrefix(r.Timings[5].Name, "im2col-gradient guidance pass") {
			t.Fatalf("report %+v", r)
		}
		for _, s := range r.Timings {
			if !(s.MedianMS > 0) || !(s.PeakMiB > 0) {
				t.Errorf("%s: median %v ms, peak %v MiB", s.Name, s.MedianMS, s.PeakMiB)
			}
			// --profile: every call but the denoising loop and the graph
			// replay (a profile refuses capture), with its kernels.
			unprofiled := strings.HasPrefix(s.Name, "denoise") || strings.HasPrefix(s.Name, "graph replay")
			if unprofiled != (s.Profile == nil) || (s.Profile != nil && (s.Profile.Launches() == 0 || !(s.Profile.TotalMS > 0))) {
				t.Errorf("%s: profile %+v", s.Name, s.Profile)
			}
		}
		if !strings.Contains(stdout, "profile of one unet, batch 2") || !strings.Contains(stdout, "(whole call)") {
			t.Errorf("no UNet profile in the table:\n%s", stdout)
		}
	})
}

// TestProfileKernelsOnGPU: --profile-kernels puts the kernels of a plain
// generation on the device track, inside the generation's span.
func TestProfileKernelsOnGPU(t *testing.T) {
	fixtures.GPU(t)
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.json")
	err := run([]string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "a mouse hunting a lion",
		"--steps", "2", "--width", "64", "--height", "64", "--out", filepath.Join(dir, "a.png"), "--quiet",
		"--device", "cuda", "--dtype", "fp16", "--profile-out", trace, "--profile-kernels"})
	if err != nil {
		t.Fatal(err)
	}
	events := timelinetest.Read(t, trace)
	var gen *timelinetest.Event
	kernels := 0
	for i, e := range events {
		if e.Name == "generate" {
			gen = &events[i]
		}
	}
	if gen == nil {
		t.Fatal("no generate span")
	}
	for _, e := range events {
		if e.TID != timeline.DeviceTrack {
			continue
		}
		kernels++
		// The profile starts before and ends after the generation (a little
		// slack for the event clock).
		if e.TS < gen.TS-1e3 || e.TS+e.Dur > gen.TS+gen.Dur+1e3 {
			t.Errorf("kernel %s [%.1f, %.1f]µs outside generate [%.1f, %.1f]µs", e.Name, e.TS, e.TS+e.Dur, gen.TS, gen.TS+gen.Dur)
		}
	}
	if kernels < 100 {
		t.Errorf("%d kernel events on the device track", kernels)
	}
}
