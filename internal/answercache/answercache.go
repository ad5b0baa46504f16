// Package answercache keeps a model's answers on disk, one JSON file per
// request, so that asking the same thing again (rerunning a benchmark, the
// same caption) costs no request. The planner and the benchmark's judges
// share it.
package answercache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/regular"
)

// MaxEntry bounds an entry's file: an answer is at most a few thousand
// tokens, a few kilobytes, so a larger file is no entry this package wrote.
const MaxEntry = 1 << 20

// Key names a request: the SHA-256, in hex, of its parts joined by NUL bytes,
// a byte no part holds, so that different parts never join to the same text.
func Key(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])
}

// Cache is a folder of entries, <dir>/<key>.json. The zero Cache (no folder)
// keeps nothing. It is safe to use from several goroutines and processes:
// an entry is written whole or not at all.
type Cache struct{ dir string }

// New returns the cache in dir; "" is a cache that keeps nothing.
func New(dir string) Cache { return Cache{dir: dir} }

func (c Cache) path(key string) string { return filepath.Join(c.dir, key+".json") }

// Load decodes key's entry into v and reports whether there was one. An entry
// that is missing, not a regular file, larger than MaxEntry or not JSON of v's
// shape (truncated, edited, written by a bug) is a miss: the caller asks again
// and Store replaces it. Checking the decoded answer is the caller's part.
func (c Cache) Load(key string, v any) bool {
	if c.dir == "" {
		return false
	}
	raw, err := regular.ReadFileAtMost(c.path(key), MaxEntry)
	return err == nil && json.Unmarshal(raw, v) == nil
}

// Store writes v as key's entry, creating the folder when it is missing.
// The errors name the folder or file; callers log them or go on without the
// entry, since a cache that cannot be written costs only a later request.
func (c Cache) Store(key string, v any) error {
	if c.dir == "" {
		return nil
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", c.path(key), err)
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteBytes(c.path(key), data)
}
