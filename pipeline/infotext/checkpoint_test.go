package infotext

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
)

// useCacheDir points os.UserCacheDir at a fresh folder and returns the
// hash cache's path there.
func useCacheDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	t.Setenv("HOME", dir) // where macOS keeps it
	return hashCacheFile()
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// The short hash is the first 10 hex digits of the file's SHA-256; the full
// digest is cached and used while the file keeps its size and time; a changed
// file, a corrupt cache or one that cannot be written cost a rehash, never
// an error.
func TestShortHash(t *testing.T) {
	cache := useCacheDir(t)
	model := filepath.Join(t.TempDir(), "model.safetensors")
	os.WriteFile(model, []byte("weights"), 0o644)
	want := sha256Hex([]byte("weights"))[:10]
	if got, err := ShortHash(model); err != nil || got != want {
		t.Fatalf("ShortHash = %q, %v; want %q", got, err, want)
	}
	var entries map[string]hashEntry
	raw, _ := os.ReadFile(cache)
	if err := json.Unmarshal(raw, &entries); err != nil || entries[model].SHA256 != sha256Hex([]byte("weights")) {
		t.Fatalf("cache %s: %v %s", cache, err, raw)
	}

	// The cache is what answers while size and time match.
	fake := entries[model]
	fake.SHA256 = "ffffffffff" + fake.SHA256[10:]
	raw, _ = json.Marshal(map[string]hashEntry{model: fake})
	os.WriteFile(cache, raw, 0o644)
	if got, _ := ShortHash(model); got != "ffffffffff" {
		t.Fatalf("with a cached digest: %q", got)
	}

	// A changed file is hashed again.
	os.WriteFile(model, []byte("WEIGHTS"), 0o644)
	later := time.Now().Add(time.Hour)
	os.Chtimes(model, later, later)
	if got, _ := ShortHash(model); got != sha256Hex([]byte("WEIGHTS"))[:10] {
		t.Fatalf("after the file changed: %q", got)
	}

	// A corrupt cache is ignored and rewritten.
	os.WriteFile(cache, []byte("{not json"), 0o644)
	if got, err := ShortHash(model); err != nil || got != sha256Hex([]byte("WEIGHTS"))[:10] {
		t.Fatalf("with a corrupt cache: %q, %v", got, err)
	}
	raw, _ = os.ReadFile(cache)
	if err := json.Unmarshal(raw, &entries); err != nil || len(entries) != 1 {
		t.Fatalf("the corrupt cache was not rewritten: %v %s", err, raw)
	}

	// A cache that cannot be written only costs the next run a rehash.
	os.Remove(cache)
	os.MkdirAll(filepath.Join(cache, "in-the-way"), 0o755)
	if got, err := ShortHash(model); err != nil || got != sha256Hex([]byte("WEIGHTS"))[:10] {
		t.Fatalf("with an unwritable cache: %q, %v", got, err)
	}

	if _, err := ShortHash(filepath.Join(t.TempDir(), "missing.safetensors")); err == nil {
		t.Fatal("a missing file has no hash")
	}
}

// A1111's names: a file's without its extension, a folder's whole, the
// repository's for a Hugging Face cache snapshot.
func TestModelName(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "v2-1_512-ema-pruned.safetensors")
	os.WriteFile(file, nil, 0o644)
	folder := filepath.Join(dir, "stable-diffusion-v1.5")
	snapshot := filepath.Join(dir, "hub", "models--stabilityai--stable-diffusion-2-1-base", "snapshots", "5ede9e4bf3e3fd1cb0ef2f7a3fff13ee514fdf06")
	for _, d := range []string{folder, snapshot} {
		os.MkdirAll(d, 0o755)
	}
	for _, c := range []struct{ path, want string }{
		{file, "v2-1_512-ema-pruned"}, {folder, "stable-diffusion-v1.5"}, {folder + "/", "stable-diffusion-v1.5"},
		{snapshot, "stable-diffusion-2-1-base"},
	} {
		if got := modelName(c.path); got != c.want {
			t.Errorf("modelName(%s) = %q, want %q", c.path, got, c.want)
		}
	}
}

// A folder is named for itself and hashed by its UNet weights file; a single
// file by itself, both ways.
func TestCheckpointOf(t *testing.T) {
	useCacheDir(t)
	for _, c := range []struct{ weights, hashed, name string }{
		{fixtures.Path("models", "tiny-sd1"), fixtures.Path("models", "tiny-sd1", "unet", "diffusion_pytorch_model.safetensors"), "tiny-sd1"},
		{fixtures.Path("models", "tiny-sd1.safetensors"), fixtures.Path("models", "tiny-sd1.safetensors"), "tiny-sd1"},
	} {
		m, err := pipeline.Load(c.weights, pipeline.LoadOptions{Backend: cpu.New(), DType: tensor.Float32,
			Tokenizer: fixtures.Path("tokenizer", "tiny"), ConfigDir: fixtures.Path("models", "tiny-sd1")})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		data, _ := os.ReadFile(c.hashed)
		got, err := CheckpointOf(m)
		if want := (Checkpoint{Name: c.name, Hash: sha256Hex(data)[:10], SHA256: sha256Hex(data), File: c.hashed}); err != nil || got != want {
			t.Errorf("%s: CheckpointOf = %+v, %v; want %+v", c.weights, got, err, want)
		}
	}
}
