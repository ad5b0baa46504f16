package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/internal/fakehub"
	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// modelFiles is a fixture model folder's files by slash path, as a fake
// Hub repository serves them.
func modelFiles(name string) map[string][]byte {
	files := map[string][]byte{}
	root := fixtures.Path("models", name)
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files[filepath.ToSlash(rel)], _ = os.ReadFile(p)
		}
		return nil
	})
	return files
}

// tinyHub serves the tiny SD 1.x diffusers folder as org/tiny-sd1 at commit
// cc...c and points the Hub client's environment at it and at a fresh cache.
func tinyHub(t *testing.T) (s *fakehub.Server, home string) {
	t.Helper()
	files := modelFiles("tiny-sd1")
	s = fakehub.New(map[string]*fakehub.Repo{"org/tiny-sd1": {Commit: strings.Repeat("c", 40), Files: files}})
	t.Cleanup(s.Close)
	home = t.TempDir()
	t.Setenv("HF_ENDPOINT", s.URL)
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_HUB_ETAG_TIMEOUT", "")
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "")
	return s, home
}

// The newcomer's command with a Hub name: the model comes from a (fake) Hub
// into the Hugging Face cache, and runs again offline from there.
func TestWeightsFromHub(t *testing.T) {
	s, home := tinyHub(t)
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

func TestDownloadTimeouts(t *testing.T) {
	s, home := tinyHub(t)
	for _, name := range []string{"HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"} {
		t.Setenv(name, "soon")
		if err := run([]string{"download", "org/tiny-sd1"}); err == nil || !strings.Contains(err.Error(), name) {
			t.Fatalf("%s=soon: %v", name, err)
		}
		t.Setenv(name, "")
	}
	if err := run([]string{"download", "--etag-timeout", "0s", "org/tiny-sd1"}); err == nil || !strings.Contains(err.Error(), "--etag-timeout") {
		t.Fatalf("--etag-timeout 0s: %v", err)
	}

	// The environment's limits would make each stall below last a minute;
	// the flags' make it a fraction of a second.
	t.Setenv("HF_HUB_ETAG_TIMEOUT", "60")
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "60")
	download := func() {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			done <- run([]string{"download", "--etag-timeout", "200ms", "--download-timeout", "200ms", "org/tiny-sd1"})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("download waited past its timeout flags")
		}
	}
	s.StallAfter, s.StallOnce = 1000, true // the first weight file stalls once
	download()
	resumed := false
	for _, l := range s.Requests() {
		resumed = resumed || strings.HasSuffix(l, "bytes=1000-")
	}
	if !resumed {
		t.Fatalf("no ranged request after the stall: %v", s.Requests())
	}
	s.Stall = "GET /api/" // the Hub stops answering; the cache has the model
	download()
	if _, err := os.Stat(filepath.Join(home, "hub", "models--org--tiny-sd1", "refs", "main")); err != nil {
		t.Fatal(err)
	}
}
