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
	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/llm"
)

// Merged counts what Merge copied, and what it left out: files broken in
// their shard, and images without a sidecar (items not finished).
type Merged struct {
	Items, Plans, Results int
	Skipped               int
}

// Merge combines shard run folders into out: bench.json (the shards must
// describe runs with the same settings), plans, items and judge results.
//
// An item is merged whole: its image, sidecar and kept artifacts come from
// one shard, and only when they pass Check there, so a sidecar is never
// paired with another shard's image; the files are copied as streams and
// verified against the sidecar's sizes and hashes on the way. An item
// already intact in out is kept; a broken one there is replaced by an
// intact one from a shard, its kept artifacts folder emptied first. A shard's broken item,
// plan or result, and an image without a sidecar, are left out with a line
// on log. Only finished files are looked at (non-hidden .json files, the
// images their sidecars name, and images to report when they have none), so
// claims, claims put aside (.claim.stale-*), locks/ and temporary files stay
// behind.
//
// A plan or result already in out that reads is kept, except that a result
// that is "ok" for the merged item's image replaces one that is not.
func Merge(out string, shards []string, log io.Writer) (Merged, error) {
	var n Merged
	var first *Run
	for _, dir := range shards {
		r, err := readRun(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("rfbench: merge: %s is not a run folder: %w", dir, err)
		} else if err != nil {
			return n, err
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
		err = walkFiles(dir, "images", ".json", func(rel string) error {
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
			n.Items++
			return copyItem(dir, out, rel, c.meta, c.raw)
		})
		if err == nil {
			// Images without a sidecar: items a process was making, or one
			// that lost its sidecar. Not copied, but said.
			err = walkFiles(dir, "images", ".png", func(rel string) error {
				sidecar := strings.TrimSuffix(rel, ".png") + ".json"
				if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(sidecar))); errors.Is(err, fs.ErrNotExist) {
					skip(rel, fmt.Errorf("no sidecar %s beside it: the item was not finished", sidecar))
				}
				return nil
			})
		}
		if err != nil {
			return n, fmt.Errorf("rfbench: merge %s: %w", dir, err)
		}
		err = walkFiles(dir, "plans", ".json", func(rel string) error {
			raw, err := regular.ReadFileAtMost(filepath.Join(dir, rel), MaxJSON)
			if err == nil {
				_, err = llm.ReadPlan(filepath.Join(dir, rel))
			}
			if err != nil {
				skip(rel, err)
				return nil
			}
			if _, err := readPlan(filepath.Join(out, rel)); err == nil {
				return nil
			}
			n.Plans++
			return writeRel(out, rel, raw)
		})
		if err != nil {
			return n, fmt.Errorf("rfbench: merge %s: %w", dir, err)
		}
		err = walkFiles(dir, "eval", ".json", func(rel string) error {
			r, raw, err := readResult(dir, rel)
			if err != nil {
				skip(rel, err)
				return nil
			}
			if have, _, err := readResult(out, rel); err == nil && !betterResult(out, rel, r, have) {
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

// walkFiles calls f with the path, relative to dir and with slashes, of every
// file under dir/sub whose name ends in ext and does not start with a dot (a
// write in progress, or left by a killed one). Files that are not regular
// are passed too, for f to refuse and report. A missing dir/sub has none.
// Folders of kept artifacts (see isArtifactsDir) are not entered: their
// files are not items, and go with the item they belong to.
func walkFiles(dir, sub, ext string, f func(rel string) error) error {
	root := filepath.Join(dir, sub)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && isArtifactsDir(rel):
			return filepath.SkipDir
		case d.IsDir() || strings.HasPrefix(d.Name(), ".") || !strings.HasSuffix(d.Name(), ext):
			return nil
		}
		return f(rel)
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
