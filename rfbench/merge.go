package rfbench

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/llm"
)

// Merged counts what Merge copied, and what it left out because it was
// broken in its shard.
type Merged struct {
	Items, Plans, Results int
	Skipped               int
}

// Merge combines shard run folders into out: bench.json (the shards must
// describe runs with the same settings), plans, items and judge results.
//
// An item is merged whole: its image and sidecar come from one shard, and
// only when they pass Check there, so a sidecar is never paired with another
// shard's image. An item already intact in out is kept; a broken one there
// is replaced by an intact one from a shard. A shard's broken item, plan or
// result is left out with a line on log. Only finished files are looked at
// (non-hidden .json files and the images their sidecars name), so claims,
// claims put aside (.claim.stale-*), locks/ and temporary files stay behind.
//
// A plan or result already in out that reads is kept, except that a result
// that is "ok" for the merged item's image replaces one that is not.
func Merge(out string, shards []string, log io.Writer) (Merged, error) {
	var n Merged
	var first *Run
	for _, dir := range shards {
		r, err := readRun(dir)
		if err != nil {
			return n, fmt.Errorf("rfbench: merge: %s is not a run folder: %w", dir, err)
		}
		if first == nil {
			first = &r
		} else if diff := Differences(r.Settings(), first.Settings()); len(diff) > 0 {
			return n, fmt.Errorf("rfbench: merge: %s and %s describe runs with other settings (%s)", dir, shards[0], strings.Join(diff, "; "))
		}
		if err := Start(out, r); err != nil {
			return n, err
		}
		skip := func(rel string, why error) {
			n.Skipped++
			fmt.Fprintf(orDiscard(log), "rfnet-native: bench merge: leaving out %s of %s: %v\n", rel, dir, why)
		}
		err = walkJSON(dir, "images", func(rel string) error {
			c, err := check(dir, rel)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return nil // removed meanwhile
			case err != nil:
				skip(rel, err)
				return nil
			}
			if _, err := check(out, rel); err == nil {
				return nil
			} else if !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(orDiscard(log), "rfnet-native: bench merge: replacing the broken item in %s (%v) with %s's\n", out, err, dir)
			}
			// The image first: the sidecar, last, marks the item finished.
			if err := writeRel(out, c.meta.Image, c.png); err != nil {
				return err
			}
			n.Items++
			return writeRel(out, rel, c.raw)
		})
		if err != nil {
			return n, fmt.Errorf("rfbench: merge %s: %w", dir, err)
		}
		err = walkJSON(dir, "plans", func(rel string) error {
			raw, err := os.ReadFile(filepath.Join(dir, rel))
			if err == nil {
				_, err = llm.ReadPlan(filepath.Join(dir, rel))
			}
			if err != nil {
				skip(rel, err)
				return nil
			}
			if _, err := llm.ReadPlan(filepath.Join(out, rel)); err == nil {
				return nil
			}
			n.Plans++
			return writeRel(out, rel, raw)
		})
		if err != nil {
			return n, fmt.Errorf("rfbench: merge %s: %w", dir, err)
		}
		err = walkJSON(dir, "eval", func(rel string) error {
			var r EvalResult
			raw, err := os.ReadFile(filepath.Join(dir, rel))
			if err == nil {
				err = readJSON(filepath.Join(dir, rel), &r)
			}
			if err != nil {
				skip(rel, err)
				return nil
			}
			var have EvalResult
			if readJSON(filepath.Join(out, rel), &have) == nil && !betterResult(out, rel, r, have) {
				return nil
			}
			n.Results++
			return writeRel(out, rel, raw)
		})
		if err != nil {
			return n, fmt.Errorf("rfbench: merge %s: %w", dir, err)
		}
	}
	return n, nil
}

// betterResult reports whether the result r, at rel (eval/<judge>/<key>.json),
// should replace have: r is "ok" for the image of out's item and have is not.
func betterResult(out, rel string, r, have EvalResult) bool {
	parts := strings.SplitN(rel, "/", 3)
	if len(parts) != 3 {
		return false
	}
	m, err := Check(out, "images/"+parts[2])
	if err != nil {
		return false
	}
	ok := func(r EvalResult) bool { return r.Status == "ok" && r.Of(m) }
	return ok(r) && !ok(have)
}

// walkJSON calls f with the path, relative to dir and with slashes, of every
// .json file under dir/sub whose name does not start with a dot (a write in
// progress, or left by a killed one). A missing dir/sub has none.
func walkJSON(dir, sub string, f func(rel string) error) error {
	root := filepath.Join(dir, sub)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") || !strings.HasSuffix(d.Name(), ".json") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return f(filepath.ToSlash(rel))
	})
}

// writeRel writes data atomically to rel (with slashes) under dir.
func writeRel(dir, rel string, data []byte) error {
	path := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, data)
}
