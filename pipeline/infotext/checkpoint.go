package infotext

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/pipeline"
)

// Checkpoint is how a parameters text names the model: A1111's Model and
// Model hash keys.
type Checkpoint struct {
	Name string // the file's name without its extension, or the folder's
	Hash string // A1111's short hash: the first 10 hex digits of a SHA-256
	// SHA256 is that whole digest, of File (A1111's sd-models API lists both).
	SHA256, File string
}

// CheckpointOf names m. The hash is that of the checkpoint file, or for a
// diffusers folder that of its UNet weights file: the file A1111 would load
// for it, and the one that tells fine-tunes of a family apart. The name of a
// Hugging Face cache snapshot (models--org--name/snapshots/REVISION) is the
// repository's.
func CheckpointOf(m *pipeline.Model) (Checkpoint, error) {
	for _, c := range m.Components {
		if c.Name == "unet" {
			sum, err := FileSHA256(c.File)
			if err != nil {
				return Checkpoint{}, err
			}
			return Checkpoint{Name: modelName(m.Path), Hash: sum[:10], SHA256: sum, File: c.File}, nil
		}
	}
	return Checkpoint{}, fmt.Errorf("infotext: %s: the model has no unet weights", m.Path)
}

// RefinerCheckpointOf names the refiner r as CheckpointOf names a model: the
// hash is that of its UNet's weights file.
func RefinerCheckpointOf(r *pipeline.Refiner) (Checkpoint, error) {
	if r.UNetFile == "" {
		return Checkpoint{}, fmt.Errorf("infotext: %s: the refiner has no unet weights file", r.Path)
	}
	sum, err := FileSHA256(r.UNetFile)
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Name: modelName(r.Path), Hash: sum[:10], SHA256: sum, File: r.UNetFile}, nil
}

// modelName is A1111's name_for_extra, the base name without its extension,
// for a file; a folder keeps its whole name (a dot in it is no extension).
func modelName(path string) string {
	path = filepath.Clean(path)
	base := filepath.Base(path)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		parent := filepath.Dir(path)
		if filepath.Base(parent) == "snapshots" {
			if repo, ok := strings.CutPrefix(filepath.Base(filepath.Dir(parent)), "models--"); ok {
				if _, name, ok := strings.Cut(repo, "--"); ok {
					return name
				}
			}
		}
		return base
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// ShortHash is A1111's short hash of the file at path: the first 10 hex
// digits of its SHA-256. Hashing a checkpoint of gigabytes takes seconds, so
// the digest is kept between runs, as A1111 keeps it, keyed by the file's
// absolute path, size and modification time, in hashCacheFile. The cache only
// saves time: one that cannot be read or parsed counts as empty and is
// rewritten, and one that cannot be written is left as it is.
func ShortHash(path string) (string, error) {
	sum, err := FileSHA256(path)
	if err != nil {
		return "", err
	}
	return sum[:10], nil
}

// FileSHA256 is the SHA-256 of the file at path, as hex, through
// ShortHash's cache.
func FileSHA256(path string) (string, error) {
	f, err := regular.Open(path)
	if err != nil {
		return "", fmt.Errorf("infotext: model hash: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("infotext: model hash: %w", err)
	}
	key, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("infotext: model hash: %w", err)
	}
	seen := hashEntry{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	cacheFile := hashCacheFile()
	if e, ok := readHashCache(cacheFile)[key]; ok && e.Size == seen.Size && e.ModTime == seen.ModTime && isSHA256(e.SHA256) {
		return e.SHA256, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("infotext: model hash: %s: %w", path, err)
	}
	seen.SHA256 = hex.EncodeToString(h.Sum(nil))
	if cacheFile != "" {
		// Read again: another run may have added a file while this one hashed.
		cache := readHashCache(cacheFile)
		cache[key] = seen
		writeHashCache(cacheFile, cache)
	}
	return seen.SHA256, nil
}

// hashEntry is one file's digest in the cache, with the size and
// modification time (nanoseconds since 1970) it had when hashed.
type hashEntry struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

// hashCacheFile is os.UserCacheDir()/rfnet-native/model-hashes.json, or ""
// when the system names no cache folder.
func hashCacheFile() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "rfnet-native", "model-hashes.json")
}

// maxHashCache bounds the cache file read: a file far larger than thousands
// of entries need is not the cache.
const maxHashCache = 16 << 20

func readHashCache(file string) map[string]hashEntry {
	cache := map[string]hashEntry{}
	if file == "" {
		return cache
	}
	data, err := regular.ReadFileAtMost(file, maxHashCache)
	if err != nil || json.Unmarshal(data, &cache) != nil || cache == nil {
		return map[string]hashEntry{}
	}
	return cache
}

func writeHashCache(file string, cache map[string]hashEntry) {
	data, err := json.MarshalIndent(cache, "", "  ")
	if err != nil || os.MkdirAll(filepath.Dir(file), 0o755) != nil {
		return
	}
	atomicfile.WriteBytes(file, append(data, '\n'))
}

func isSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
