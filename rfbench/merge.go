package rfbench

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
)

// Merge combines shard run folders into out: bench.json (the shards must
// describe the same run), plans, images with their metadata, and judge
// results; not locks or claims. A file already in out is kept. It returns how
// many files it copied.
func Merge(out string, shards []string) (int, error) {
	var run *Run
	copied := 0
	for _, dir := range shards {
		raw, err := os.ReadFile(filepath.Join(dir, "bench.json"))
		if err != nil {
			return copied, fmt.Errorf("rfbench: merge: %s is not a run folder: %w", dir, err)
		}
		var r Run
		if err := json.Unmarshal(raw, &r); err != nil {
			return copied, fmt.Errorf("rfbench: merge: %s: %w", dir, err)
		}
		if run == nil {
			run = &r
			if err := Start(out, r); err != nil {
				return copied, err
			}
		} else if r.PromptsSHA256 != run.PromptsSHA256 || r.Model["hash"] != run.Model["hash"] {
			return copied, fmt.Errorf("rfbench: merge: %s ran other prompts or another model than %s", dir, shards[0])
		} else if err := Start(out, r); err != nil {
			return copied, err
		}
		for _, sub := range []string{"plans", "images", "eval"} {
			root := filepath.Join(dir, sub)
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					if os.IsNotExist(err) && p == root {
						return filepath.SkipDir
					}
					return err
				}
				// A claim belongs to a process working in the shard, and a
				// hidden file is a write in progress (or left by a killed one).
				if d.IsDir() || strings.HasSuffix(p, ".claim") || strings.HasPrefix(d.Name(), ".") {
					return nil
				}
				rel, _ := filepath.Rel(dir, p)
				dst := filepath.Join(out, rel)
				if _, err := os.Stat(dst); err == nil {
					return nil
				}
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return err
				}
				copied++
				return atomicfile.WriteBytes(dst, data)
			})
			if err != nil {
				return copied, fmt.Errorf("rfbench: merge %s: %w", dir, err)
			}
		}
	}
	return copied, nil
}
