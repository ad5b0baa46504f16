package rfbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/rfnet/rfnet-native/judge"
	"github.com/rfnet/rfnet-native/pipeline"
)

// EvalResult is one judged image, eval/<judge>/<method>/<id>-s<seed>.json.
type EvalResult struct {
	ID          string   `json:"id"`
	Method      string   `json:"method"`
	Seed        int      `json:"seed"`
	Judge       string   `json:"judge"`
	Status      string   `json:"status"` // ok or failed
	Score       *float64 `json:"score,omitempty"`
	Explanation string   `json:"explanation,omitempty"`
	Description string   `json:"description,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// Key is the item key of the result.
func (r EvalResult) Key() string { return fmt.Sprintf("%s/%s-s%d", r.Method, r.ID, r.Seed) }

// LoadMetas reads the metadata of every finished image of a run, sorted by key.
func LoadMetas(run string) ([]Meta, error) {
	var out []Meta
	err := eachJSON(filepath.Join(run, "images"), false, func(m Meta) {
		if _, err := os.Stat(filepath.Join(run, m.Image)); err == nil {
			out = append(out, m)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("rfbench: %s: %w", run, err)
	}
	sort.Slice(out, func(i, j int) bool { return metaKey(out[i]) < metaKey(out[j]) })
	return out, nil
}

func metaKey(m Meta) string { return fmt.Sprintf("%s/%s-s%d", m.Method, m.ID, m.Seed) }

func resultPath(run, judgeName string, m Meta) string {
	return filepath.Join(run, "eval", judgeName, filepath.FromSlash(metaKey(m))+".json")
}

// LoadResults reads a judge's results of a run, keyed by item key.
func LoadResults(run, judgeName string) (map[string]EvalResult, error) {
	out := map[string]EvalResult{}
	err := eachJSON(filepath.Join(run, "eval", judgeName), true, func(r EvalResult) { out[r.Key()] = r })
	return out, err
}

// eachJSON decodes every .json file below root as a T and hands it to use;
// a file that does not decode is an error naming it. With missingOK a root
// that does not exist holds nothing.
func eachJSON[T any](root string, missingOK bool, use func(T)) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if missingOK && errors.Is(err, fs.ErrNotExist) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		use(v)
		return nil
	})
}

// Evaluate judges every image of a run that has no successful result yet,
// with up to concurrency requests at a time. A failed item is written as
// failed (and tried again by the next Evaluate), never as a score.
func Evaluate(ctx context.Context, run string, j judge.Judge, concurrency int, progress func(done, total int)) (Summary, error) {
	metas, err := LoadMetas(run)
	if err != nil {
		return Summary{}, err
	}
	done, _ := LoadResults(run, j.Name())
	var todo []Meta
	var s Summary
	for _, m := range metas {
		if r, ok := done[metaKey(m)]; ok && r.Status == "ok" {
			s.Skipped++
			continue
		}
		todo = append(todo, m)
	}
	var mu sync.Mutex
	count := s.Skipped
	work := make(chan Meta)
	var wg sync.WaitGroup
	for w := 0; w < max(1, concurrency); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				r := judgeOne(ctx, run, j, m)
				path := resultPath(run, j.Name(), m)
				err := os.MkdirAll(filepath.Dir(path), 0o755)
				if err == nil {
					err = pipeline.WriteJSON(path, r)
				}
				mu.Lock()
				if err != nil || r.Status != "ok" {
					s.Failed++
				} else {
					s.Generated++
				}
				count++
				if progress != nil {
					progress(count, len(metas))
				}
				mu.Unlock()
			}
		}()
	}
	for _, m := range todo {
		if ctx.Err() != nil {
			break
		}
		work <- m
	}
	close(work)
	wg.Wait()
	if err := os.MkdirAll(filepath.Join(run, "eval", j.Name()), 0o755); err != nil {
		return s, err
	}
	return s, ctx.Err()
}

func judgeOne(ctx context.Context, run string, j judge.Judge, m Meta) EvalResult {
	r := EvalResult{ID: m.ID, Method: m.Method, Seed: m.Seed, Judge: j.Name(), Status: "failed"}
	png, err := os.ReadFile(filepath.Join(run, m.Image))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	a, err := j.Score(ctx, m.Prompt, png)
	r.Description, r.Explanation = a.Description, a.Explanation
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Status, r.Score = "ok", a.Score
	return r
}
