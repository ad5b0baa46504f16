package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fakehub"
	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// tokenizerHub serves the tiny models' tokenizer folders as the repositories
// a bare single file's tokenizer comes from, each beside a weight file that
// must never be asked for, and points the environment at it and a fresh cache.
func tokenizerHub(t *testing.T) (s *fakehub.Server, home string) {
	t.Helper()
	repo := func(model string) *fakehub.Repo {
		files := map[string][]byte{"unet/diffusion_pytorch_model.safetensors": []byte("weights that must not be fetched")}
		dir := fixtures.Path("models", model, "tokenizer")
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			files["tokenizer/"+e.Name()], _ = os.ReadFile(filepath.Join(dir, e.Name()))
		}
		return &fakehub.Repo{Commit: strings.Repeat("a", 40), Files: files}
	}
	s = fakehub.New(map[string]*fakehub.Repo{
		"stable-diffusion-v1-5/stable-diffusion-v1-5": repo("tiny-sd1"),
		"stabilityai/stable-diffusion-2-1":            repo("tiny-sd2"),
	})
	t.Cleanup(s.Close)
	home = t.TempDir()
	for k, v := range map[string]string{"HF_ENDPOINT": s.URL, "HF_HOME": home, "HF_HUB_OFFLINE": "", "HF_HUB_ETAG_TIMEOUT": "", "HF_HUB_DOWNLOAD_TIMEOUT": ""} {
		t.Setenv(k, v)
	}
	return s, home
}

// `rfnet-native -weights model.safetensors -prompt ...` works as written: the
// tokenizer of the file's family comes from the Hub (its files alone) the
// first time, from the cache after that; an SD 2.x file gets SD 2.x's.
func TestBareSingleFile(t *testing.T) {
	for _, c := range []struct{ file, config, repo string }{
		{"tiny-sd1.safetensors", "tiny-sd1", "stable-diffusion-v1-5/stable-diffusion-v1-5"},
		{"tiny-sd2.safetensors", "tiny-sd2", "stabilityai/stable-diffusion-2-1"},
	} {
		t.Run(c.file, func(t *testing.T) {
			s, home := tokenizerHub(t)
			dir := t.TempDir()
			// --config: the tiny models' architecture is not one the shapes imply (their groups are few).
			args := []string{"-method", "sd", "-weights", fixtures.Path("models", c.file), "-config", fixtures.Path("models", c.config),
				"-prompt", "a lion", "-steps", "2", "-width", "64", "-height", "64", "-quiet"}
			if err := run(append(args, "-out", filepath.Join(dir, "a.png"))); err != nil {
				t.Fatal(err)
			}
			reqs := s.Requests()
			if len(reqs) == 0 {
				t.Fatal("no request to the Hub")
			}
			for _, r := range reqs {
				if !strings.Contains(r, "/"+c.repo+"/resolve/main/tokenizer/") && !strings.Contains(r, "/lfs/") {
					t.Errorf("asked for more than the tokenizer: %s", r)
				}
				if strings.Contains(r, "safetensors") {
					t.Errorf("asked for weights: %s", r)
				}
			}
			if _, err := os.Stat(filepath.Join(home, "hub", "models--"+strings.ReplaceAll(c.repo, "/", "--"), "refs", "main")); err != nil {
				t.Fatal(err)
			}
			before := len(s.Requests())
			if err := run(append(args, "-out", filepath.Join(dir, "b.png"))); err != nil {
				t.Fatal(err)
			}
			if after := s.Requests(); len(after) != before {
				t.Fatalf("the second run asked the Hub again: %v", after[before:])
			}
			a, _ := os.ReadFile(filepath.Join(dir, "a.png"))
			b, _ := os.ReadFile(filepath.Join(dir, "b.png"))
			if string(a) != string(b) {
				t.Fatal("the cached tokenizer gave another image")
			}
		})
	}
}

// A cache that already holds another of diffusers' sources (here
// openai/clip-vit-large-patch14, whose tokenizer files sit at its root) is
// used as it is, without the Hub; offline with nothing cached is one error
// that names the flag and the download command.
func TestBareSingleFileFromCacheAndOffline(t *testing.T) {
	s, home := tokenizerHub(t)
	commit := strings.Repeat("b", 40)
	repo := filepath.Join(home, "hub", "models--openai--clip-vit-large-patch14")
	snap := filepath.Join(repo, "snapshots", commit)
	os.MkdirAll(snap, 0o755)
	os.MkdirAll(filepath.Join(repo, "refs"), 0o755)
	os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit), 0o644)
	for _, f := range []string{"vocab.json", "merges.txt"} {
		data, _ := os.ReadFile(fixtures.Path("models", "tiny-sd1", "tokenizer", f))
		os.WriteFile(filepath.Join(snap, f), data, 0o644)
	}
	out := captureStdout(t, func() error {
		return run([]string{"tokenize", "-weights", fixtures.Path("models", "tiny-sd1.safetensors"), "-prompt", "A Lion!"})
	})
	if !strings.Contains(out, `"lion\u003c/w\u003e"`) {
		t.Fatalf("tokenize printed %s", out)
	}
	if reqs := s.Requests(); len(reqs) != 0 {
		t.Fatalf("asked the Hub with a cached tokenizer: %v", reqs)
	}

	t.Setenv("HF_HUB_OFFLINE", "1")
	err := run([]string{"-method", "sd", "-weights", fixtures.Path("models", "tiny-sd2.safetensors"), "-prompt", "x", "-out", filepath.Join(t.TempDir(), "x.png"), "-quiet"})
	for _, want := range []string{"holds no tokenizer", "--tokenizer", "rfnet-native download --tokenizer-only stabilityai/stable-diffusion-2-1", "stabilityai/stable-diffusion-2-1-base/tokenizer"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("offline, nothing cached: %v (want %q)", err, want)
		}
	}
	// The command the error names fetches the tokenizer files alone, after which offline works.
	t.Setenv("HF_HUB_OFFLINE", "")
	folder := strings.TrimSpace(captureStdout(t, func() error {
		return run([]string{"download", "--tokenizer-only", "stabilityai/stable-diffusion-2-1"})
	}))
	if _, err := os.Stat(filepath.Join(folder, "vocab.json")); err != nil || filepath.Base(folder) != "tokenizer" {
		t.Fatalf("download --tokenizer-only printed %q: %v", folder, err)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	if err := run([]string{"-method", "sd", "-weights", fixtures.Path("models", "tiny-sd2.safetensors"), "-config", fixtures.Path("models", "tiny-sd2"),
		"-prompt", "x", "-steps", "2", "-width", "64", "-height", "64", "-out", filepath.Join(t.TempDir(), "x.png"), "-quiet"}); err != nil {
		t.Fatal(err)
	}
}
