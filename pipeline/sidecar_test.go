package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// A PNG on disk always has its own sidecar: when either cannot be written,
// the earlier result stays as it was and no temporary file is left. (The
// order of the renames, sidecar first, is atomicfile.CommitAll's test.)
func TestWriteImageIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "a.png")
	img := tensor.Zeros(cpu.New(), tensor.Float32, 1, 3, 8, 8)
	if err := WriteImage(out, img, Sidecar{Prompt: "first"}, "first"); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(out)
	empty := tensor.Zeros(cpu.New(), tensor.Float32, 1, 3, 0, 0) // PNG cannot encode 0×0
	if err := WriteImage(out, empty, Sidecar{Prompt: "x"}, "x"); err == nil {
		t.Fatal("a 0×0 image was written")
	}
	if left, _ := os.ReadDir(dir); len(left) != 2 {
		t.Fatalf("a failed encode changed the earlier result: %v", left)
	}
	// The sidecar cannot be written (a folder holds its name): nothing changes.
	os.Remove(filepath.Join(dir, "a.json"))
	os.MkdirAll(filepath.Join(dir, "a.json", "x"), 0o755)
	if err := WriteImage(out, tensor.Zeros(cpu.New(), tensor.Float32, 1, 3, 16, 16), Sidecar{Prompt: "second"}, "second"); err == nil {
		t.Fatal("wrote with a folder in the sidecar's place")
	}
	if now, _ := os.ReadFile(out); string(now) != string(first) {
		t.Fatal("the PNG changed although its sidecar could not be written")
	}
	if left, _ := os.ReadDir(dir); len(left) != 2 {
		t.Fatalf("left behind: %v", left)
	}
}

// An --out that is a symbolic link keeps the link: the PNG lands at its target.
func TestWriteImageThroughALink(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "latest.png")
	os.Symlink("target.png", out)
	img := tensor.Zeros(cpu.New(), tensor.Float32, 1, 3, 8, 8)
	for i := 0; i < 2; i++ { // the second write replaces an existing target
		if err := WriteImage(out, img, Sidecar{Prompt: "x"}, "x"); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(out); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("write %d: the link is gone: %v", i, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "target.png")); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}
