package rfnet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/tensor"
)

// fakeResult is a finished run of one object on a 16×16 image (2×2 latent),
// without running a model; side 0 makes the object image impossible to encode.
func fakeResult(name string, side int) *Result {
	b := cpu.New()
	img := tensor.Zeros(b, tensor.Float32, 1, 3, 16, 16).AddScalar(0.5)
	obj := tensor.Zeros(b, tensor.Float32, 1, 3, side, side)
	plan := testPlan()
	plan.Objects = plan.Objects[:1]
	plan.Objects[0].Name = name
	return &Result{Image: img, Plan: plan, OverallPrompt: "p", LatentH: 2, LatentW: 2,
		Objects:   []ObjectResult{{Name: name, Image: obj, Mask: []float64{1, 0, 0, 1}, Saliency: []float64{1, 2, 3, 4}, SalH: 2, SalW: 2}},
		Durations: map[string]time.Duration{"overall": time.Second}}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// A reused out-dir holds only the new run's files, with its trace; a write
// that fails leaves the earlier run as it was, and no temporary files.
func TestWriteArtifactsReplacesARunWhole(t *testing.T) {
	dir := t.TempDir()
	write := func(res *Result, traced string) error {
		tr, err := OpenTrace(filepath.Join(dir, PartialTrace))
		if err != nil {
			t.Fatal(err)
		}
		tr.Add(TraceEvent{Stage: traced})
		defer tr.Close()
		return WriteArtifacts(dir, res, testConfig(), ModelInfo{Weights: "w"}, infotext.Checkpoint{Name: "w", Hash: "0123456789"}, tr)
	}
	if err := write(fakeResult("a lion", 16), "first"); err != nil {
		t.Fatal(err)
	}
	first := listDir(t, dir)
	want := []string{"image.png", "layout.png", "objects/00-a-lion-attention.png", "objects/00-a-lion-mask.png", "objects/00-a-lion.png",
		"plan.json", "run.json", "saa.json", "trace.jsonl"}
	if !slices.Equal(first, want) {
		t.Fatalf("first run wrote %v, want %v", first, want)
	}
	imageBefore, _ := os.ReadFile(filepath.Join(dir, "image.png"))

	// The object image cannot be encoded (0×0): the write fails before any
	// file of the first run is touched.
	if err := write(fakeResult("a mouse", 0), "failed"); err == nil {
		t.Fatal("a run whose object image cannot be encoded was written")
	}
	got := listDir(t, dir)
	if !slices.Equal(got, append(slices.Clone(want[:8]), "trace.jsonl", PartialTrace)) {
		t.Fatalf("after a failed write: %v", got)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "image.png")); string(after) != string(imageBefore) {
		t.Fatal("the failed write changed the earlier run's image.png")
	}
	if trace, _ := os.ReadFile(filepath.Join(dir, "trace.jsonl")); !strings.Contains(string(trace), "first") {
		t.Fatalf("the earlier run's trace was replaced: %s", trace)
	}

	// A second run with another object: the first run's object files go, and
	// files that are not an object's stay.
	os.WriteFile(filepath.Join(dir, "objects", "my-photo.png"), []byte("mine"), 0o644)
	os.WriteFile(filepath.Join(dir, "objects", "readme.txt"), []byte("mine"), 0o644)
	if err := write(fakeResult("a mouse", 16), "second"); err != nil {
		t.Fatal(err)
	}
	got = listDir(t, dir)
	want = []string{"image.png", "layout.png", "objects/00-a-mouse-attention.png", "objects/00-a-mouse-mask.png", "objects/00-a-mouse.png",
		"objects/my-photo.png", "objects/readme.txt", "plan.json", "run.json", "saa.json", "trace.jsonl"}
	if !slices.Equal(got, want) {
		t.Fatalf("second run left %v, want %v", got, want)
	}
	if trace, _ := os.ReadFile(filepath.Join(dir, "trace.jsonl")); !strings.Contains(string(trace), "second") {
		t.Fatalf("trace.jsonl is not the second run's: %s", trace)
	}
}
