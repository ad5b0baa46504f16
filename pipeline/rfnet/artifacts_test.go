package rfnet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/pipeline"
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
	phrase := PhraseTokens{Phrase: name, Positions: []int{1}, Tokens: []string{"p</w>"}, WordIndex: 1, WordToken: "p</w>"}
	return &Result{Image: img, Plan: plan, OverallPrompt: "p", LatentH: 2, LatentW: 2,
		Objects: []ObjectResult{{Name: name, Image: obj, Mask: []float64{1, 0, 0, 1}, Saliency: []float64{1, 2, 3, 4}, SalH: 2, SalW: 2,
			AlignedMask: []float64{0, 1, 1, 0}, OverallAttention: []float64{1, 0, 0, 0}, ReferenceAttention: []float64{0, 1, 0, 0}}},
		Durations: map[string]time.Duration{"overall": time.Second},
		Geometry: Geometry{LatentGrid: [2]int{2, 2}, Objects: []ObjectGeometry{{Name: name, SOPrompt: phrase, OverallPrompt: phrase}},
			OverallTokens: []string{"<|startoftext|>", "p</w>", "<|endoftext|>"}},
		Composed: img, Frozen: []float64{0, 1, 1, 0}}
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
	want := []string{"composed.png", "geometry.json", "image.png", "index.html", "layout.png", "objects/00-a-lion-attention.png", "objects/00-a-lion-mask.png",
		"objects/00-a-lion-overall-attention.png", "objects/00-a-lion-reference-attention.png", "objects/00-a-lion.png",
		"plan.json", "regions.png", "run.json", "saa.json", "trace.jsonl"}
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
	if !slices.Equal(got, append(slices.Clone(want[:14]), "trace.jsonl", PartialTrace)) {
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
	want = []string{"composed.png", "geometry.json", "image.png", "index.html", "layout.png", "objects/00-a-mouse-attention.png", "objects/00-a-mouse-mask.png",
		"objects/00-a-mouse-overall-attention.png", "objects/00-a-mouse-reference-attention.png", "objects/00-a-mouse.png",
		"objects/my-photo.png", "objects/readme.txt", "plan.json", "regions.png", "run.json", "saa.json", "trace.jsonl"}
	if !slices.Equal(got, want) {
		t.Fatalf("second run left %v, want %v", got, want)
	}
	if trace, _ := os.ReadFile(filepath.Join(dir, "trace.jsonl")); !strings.Contains(string(trace), "second") {
		t.Fatalf("trace.jsonl is not the second run's: %s", trace)
	}
}

// preview.png is the strip of the run that wrote it: a later run without
// previews removes it rather than leave it to pass for its own.
func TestWriteArtifactsRemovesAnEarlierPreview(t *testing.T) {
	dir := t.TempDir()
	write := func(res *Result) {
		t.Helper()
		if err := WriteArtifacts(dir, res, testConfig(), ModelInfo{Weights: "w"}, infotext.Checkpoint{Name: "w", Hash: "0123456789"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	res := fakeResult("a lion", 16)
	res.Previews = []Preview{{Step: 2, Image: res.Image}, {Step: 4, Image: res.Image}}
	write(res)
	if !slices.Contains(listDir(t, dir), previewFile) {
		t.Fatalf("no %s in %v", previewFile, listDir(t, dir))
	}
	if page, _ := os.ReadFile(filepath.Join(dir, indexFile)); !strings.Contains(string(page), `src="preview.png"`) {
		t.Fatalf("index.html does not show the previews:\n%s", page)
	}
	write(fakeResult("a lion", 16))
	if slices.Contains(listDir(t, dir), previewFile) {
		t.Fatalf("the earlier run's %s stayed", previewFile)
	}
}

// index.html shows image-sdxl.png only with the refiner pass's record (as
// RefineToDir rewrites it), and a later run written without one removes the
// earlier run's refined image rather than leave it to pass for its own.
func TestWriteArtifactsIndexAndRefinedImage(t *testing.T) {
	dir := t.TempDir()
	res := fakeResult("a lion", 16)
	rec := pipeline.RefineSidecar{Width: 64, Height: 64, Steps: 50, StepsRun: 15, Strength: 0.3, Guidance: 5, Seed: 7897,
		NegativePrompt: "cartoon, " + SDXLNegativeTail, Seconds: map[string]float64{"refine": 1.5}}
	page, err := indexPage(res, testConfig(), &rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`src="image-sdxl.png"`, "64×64): 15 of 50 Euler steps (strength 0.3), guidance 5, seed 7897",
		"<td class=\"name\">sdxl refine</td><td>1.50</td>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html with the refiner's record lacks %q:\n%s", want, page)
		}
	}
	os.WriteFile(filepath.Join(dir, SDXLImage), []byte("an earlier run's"), 0o644)
	if err := WriteArtifacts(dir, res, testConfig(), ModelInfo{Weights: "w"}, infotext.Checkpoint{Name: "w", Hash: "0123456789"}, nil); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(listDir(t, dir), SDXLImage) {
		t.Fatalf("the earlier run's %s stayed", SDXLImage)
	}
	if page, _ := os.ReadFile(filepath.Join(dir, indexFile)); strings.Contains(string(page), SDXLImage) {
		t.Fatalf("index.html without a refiner pass names %s", SDXLImage)
	}
}
