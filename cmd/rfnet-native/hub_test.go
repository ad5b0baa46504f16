package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fakehub"
	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// The newcomer's command with a Hub name: the model comes from a (fake) Hub
// into the Hugging Face cache, and runs again offline from there.
func TestWeightsFromHub(t *testing.T) {
	files := map[string][]byte{}
	root := fixtures.Path("models", "tiny-sd1")
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files[filepath.ToSlash(rel)], _ = os.ReadFile(p)
		}
		return nil
	})
	s := fakehub.New(map[string]*fakehub.Repo{"org/tiny-sd1": {Commit: strings.Repeat("c", 40), Files: files}})
	defer s.Close()
	home := t.TempDir()
	t.Setenv("HF_ENDPOINT", s.URL)
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_OFFLINE", "")
	dir := t.TempDir()
	args := []string{"-method", "sd", "-weights", "org/tiny-sd1", "-prompt", "a lion", "-steps", "2", "-width", "64", "-height", "64", "-quiet"}
	if err := run(append(args, "-out", filepath.Join(dir, "a.png"))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, "hub", "models--org--tiny-sd1", "refs", "main")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	t.Setenv("HF_HUB_OFFLINE", "1")
	if err := run(append(args, "-out", filepath.Join(dir, "b.png"))); err != nil {
		t.Fatalf("offline from the cache: %v", err)
	}
	out := captureStdout(t, func() error { return run([]string{"download", "org/tiny-sd1"}) })
	if !strings.Contains(out, filepath.Join("models--org--tiny-sd1", "snapshots", strings.Repeat("c", 40))) || !strings.Contains(out, "unet/diffusion_pytorch_model.safetensors") {
		t.Fatalf("download printed %q", out)
	}
	err := run(append(args[:4], "-weights", "org/not-cached", "-prompt", "x"))
	if err == nil || !strings.Contains(err.Error(), "rfnet-native download org/not-cached") {
		t.Fatalf("offline, not cached: %v", err)
	}
}
