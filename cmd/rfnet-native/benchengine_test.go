package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
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
