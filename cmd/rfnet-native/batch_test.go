package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// --batch-count 3 from seed 7 writes three images named by seed, each with
// its sidecar, and image i is the single run with seed 7+i.
func TestGenerateBatchCount(t *testing.T) {
	dir := t.TempDir()
	sd := func(extra ...string) []string {
		return append([]string{"-method", "sd", "-weights", fixtures.Path("models", "tiny-sd1"), "-prompt", "a mouse hunting a lion",
			"-steps", "3", "-width", "64", "-height", "64", "-quiet"}, extra...)
	}
	if err := run(sd("--seed", "7", "--batch-count", "3", "--out", filepath.Join(dir, "b.png"),
		"--save-latents", filepath.Join(dir, "noise.safetensors"))); err != nil {
		t.Fatal(err)
	}
	if err := run(sd("--seed", "8", "--out", filepath.Join(dir, "single.png"))); err != nil {
		t.Fatal(err)
	}
	for seed := 7; seed <= 9; seed++ {
		var meta struct {
			Seed uint64 `json:"seed"`
		}
		raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("b-%d.json", seed)))
		if err != nil || json.Unmarshal(raw, &meta) != nil || meta.Seed != uint64(seed) {
			t.Fatalf("sidecar of seed %d: %v %+v", seed, err, meta)
		}
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("noise-%d.safetensors", seed))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "b.png")); err == nil {
		t.Fatal("a batch also wrote the unnumbered --out")
	}
	if !sameImage(decodePNG(t, filepath.Join(dir, "b-8.png")), decodePNG(t, filepath.Join(dir, "single.png"))) {
		t.Fatal("the batch's second image differs from a single run with its seed")
	}
	if sameImage(decodePNG(t, filepath.Join(dir, "b-7.png")), decodePNG(t, filepath.Join(dir, "b-8.png"))) {
		t.Fatal("two seeds of the batch gave the same image")
	}
}

// An RFNet batch writes one complete out-dir per seed, from one plan.
func TestRFNetBatchCount(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	dir := t.TempDir()
	plan := `{"version": 1, "prompt": "a cat and a mouse", "objects": [
  {"name": "a cat", "box": [250, 150, 220, 260], "descriptions": ["sitting", "curled up", "asleep"]}],
  "background": "a kitchen floor", "negative": ""}`
	planPath := filepath.Join(dir, "plan.json")
	os.WriteFile(planPath, []byte(plan), 0o644)
	out := filepath.Join(dir, "out")
	if err := run(rfnetArgs(out, "--plan", planPath, "--no-saa", "--steps", "2", "--seed", "3", "--batch-count", "2",
		"--out", filepath.Join(dir, "final.png"))); err != nil {
		t.Fatal(err)
	}
	for _, seed := range []string{"3", "4"} {
		checkArtifacts(t, filepath.Join(out, "seed-"+seed), []string{"a cat"}, false)
		if _, err := os.Stat(filepath.Join(dir, "final-"+seed+".png")); err != nil {
			t.Fatal(err)
		}
	}
	if sameImage(decodePNG(t, filepath.Join(out, "seed-3", "image.png")), decodePNG(t, filepath.Join(out, "seed-4", "image.png"))) {
		t.Fatal("two seeds of the batch gave the same image")
	}
}

func TestBatchCountErrors(t *testing.T) {
	dir := t.TempDir()
	base := []string{"-method", "sd", "-weights", fixtures.Path("models", "tiny-sd1"), "-prompt", "x", "-out", filepath.Join(dir, "a.png")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch-count", "0"}, "--batch-count 0: want 1 to 1000"},
		{[]string{"--batch-count", "1001"}, "--batch-count 1001"},
		{[]string{"--batch-count", "2", "--seed", "18446744073709551615"}, "the last seed would pass"},
		{[]string{"--batch-count", "2", "--init-latents", filepath.Join(dir, "n.safetensors")}, "--init-latents exclude each other"},
	} {
		err := run(append(base, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.want)
		}
	}
}

// A failed batch names the seeds of the images on disk: RFNet's batch counts
// from the config's background seed, not from --seed's default.
func TestBatchProgressNamesTheBatchsSeeds(t *testing.T) {
	g := &generateFlags{batchCount: 3}
	if got := g.batchProgress(1, 2); got != " (image 3 of 3, seed 3; images with seeds 1 to 2 were written)" {
		t.Fatalf("%q", got)
	}
	if got := g.batchProgress(5, 0); got != " (image 1 of 3, seed 5; none written)" {
		t.Fatalf("%q", got)
	}
}
