package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

// checkEngineRows fails unless the report has exactly the rows named by
// prefixes, in order, each with a positive median and a min no larger.
func checkEngineRows(t *testing.T, r engineReport, prefixes ...string) {
	t.Helper()
	if len(r.Timings) != len(prefixes) {
		t.Fatalf("%d rows, want %d (%q): %+v", len(r.Timings), len(prefixes), prefixes, r.Timings)
	}
	for i, s := range r.Timings {
		if !strings.HasPrefix(s.Name, prefixes[i]) {
			t.Errorf("row %d is %q, want %q…", i, s.Name, prefixes[i])
		}
		if !(s.MedianMS > 0) || s.MinMS > s.MedianMS || s.Runs < 1 {
			t.Errorf("%s: median %v ms, min %v ms, %d runs", s.Name, s.MedianMS, s.MinMS, s.Runs)
		}
	}
}

// bench-engine --sam times the tiny SAM's encoder, decoder and whole
// per-object segmentation.
func TestBenchEngineSAM(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sam.json")
	stdout := captureStdout(t, func() error {
		return run([]string{"bench-engine", "--sam", "--weights", fixtures.Path("sam", "tiny-sam"), "--device", "cpu", "--dtype", "fp32",
			"--iters", "2", "--json", out})
	})
	if !strings.Contains(stdout, "sam per object") || strings.Contains(stdout, "latent") {
		t.Fatalf("table:\n%s", stdout)
	}
	r := readEngineReport(t, out)
	checkEngineRows(t, r, "sam image encoder", "sam prompt+decoder", "sam per object")
	if r.Latent != 0 || r.Timings[0].GFLOP <= 0 {
		t.Fatalf("report %+v", r)
	}
}

// bench-engine --refiner times the tiny refiner's text encoder, one UNet
// call with guidance and a refinement of 0.3 of --steps.
func TestBenchEngineRefiner(t *testing.T) {
	out := filepath.Join(t.TempDir(), "refiner.json")
	captureStdout(t, func() error {
		return run([]string{"bench-engine", "--refiner", "--weights", fixtures.Path("models", "tiny-sdxl-refiner"), "--device", "cpu", "--dtype", "fp32",
			"--size", "8", "--iters", "2", "--steps", "10", "--json", out})
	})
	r := readEngineReport(t, out)
	checkEngineRows(t, r, "refiner text encoder", "refiner unet, batch 2", "refine: 3 of 10 Euler steps")
	if r.Latent != 8 || r.Model != "sdxl-refiner" {
		t.Fatalf("report %+v", r)
	}
}

// What bench-engine times is chosen once: --sam, --refiner, --rfnet or --model.
func TestBenchEngineModelChoiceConflicts(t *testing.T) {
	for _, args := range [][]string{{"--sam", "--refiner"}, {"--sam", "--model", "sd21"}, {"--refiner", "--rfnet"}} {
		err := run(append([]string{"bench-engine"}, args...))
		if err == nil || !strings.Contains(err.Error(), "give one") {
			t.Errorf("%v: err = %v", args, err)
		}
	}
	if err := run([]string{"bench-engine", "--sam", "--size", "64"}); err == nil || !strings.Contains(err.Error(), "--size") {
		t.Errorf("--sam --size: err = %v", err)
	}
	if err := run([]string{"bench-engine", "--refiner", "--device", "cpu"}); err == nil || !strings.Contains(err.Error(), "--tokenizer") {
		t.Errorf("--refiner on random weights without --tokenizer: err = %v", err)
	}
}

// The random full-size sam-vit-base has every tensor SAM's Build asks for, at
// its shape (on the meta backend: nothing is computed).
func TestRandomSAMBuilds(t *testing.T) {
	if _, err := randomSAM(tensor.Meta{}, tensor.Float32); err != nil {
		t.Fatal(err)
	}
}
