package rfbench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/judge"
	"github.com/rfnet/rfnet-native/pipeline"
)

// EvalResult is one judged image, eval/<judge>/<method>/<id>-s<seed>.json.
type EvalResult struct {
	ID          string   `json:"id"`
	Method      string   `json:"method"`
	Seed        int      `json:"seed"`
	Judge       string   `json:"judge"`
	ImageSHA256 string   `json:"image_sha256"` // the image judged, as its sidecar records it
	Status      string   `json:"status"`       // ok or failed
	Score       *float64 `json:"score,omitempty"`
	Explanation string   `json:"explanation,omitempty"`
	Description string   `json:"description,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// Key is the item key of the result.
func (r EvalResult) Key() string { return fmt.Sprintf("%s/%s-s%d", r.Method, r.ID, r.Seed) }

// Of reports whether r judged the image m describes, and not an earlier image
// of the same item that bench has since generated again. A result without a
// hash, written before results recorded one, is taken as the result of the
// image there now when the item's sidecar is as old (HashAdded): neither
// records which image was judged, and the image has not been made again
// since, or its sidecar would be of this version.
func (r EvalResult) Of(m Meta) bool {
	if r.Key() != metaKey(m) {
		return false
	}
	return r.ImageSHA256 == m.ImageSHA256 || r.ImageSHA256 == "" && m.HashAdded
}

// LoadMetas reads the metadata of every finished and intact item of a run,
// sorted by key, and lists the sidecars that fail Check, each as "path: why".
func LoadMetas(run string) (metas []Meta, broken []string, err error) {
	err = filepath.WalkDir(filepath.Join(run, "images"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(run, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && isArtifactsDir(rel):
			return filepath.SkipDir // an item's kept artifacts, not items
		case d.IsDir() || !strings.HasSuffix(p, ".json"):
			return nil
		}
		if m, err := Check(run, rel); err != nil {
			broken = append(broken, err.Error())
		} else {
			metas = append(metas, m)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("rfbench: %s: %w", run, err)
	}
	sort.Slice(metas, func(i, j int) bool { return metaKey(metas[i]) < metaKey(metas[j]) })
	return metas, broken, nil
}

func metaKey(m Meta) string { return fmt.Sprintf("%s/%s-s%d", m.Method, m.ID, m.Seed) }

func resultPath(run, judgeName string, m Meta) string {
	return filepath.Join(run, "eval", judgeName, filepath.FromSlash(metaKey(m))+".json")
}

// LoadResults reads a judge's results of a run, keyed by item key, and lists
// the result files that do not read (see readResult), each as "path: why":
// Evaluate judges their items again, and report leaves them out of its
// tables. A judge without results has none.
func LoadResults(run, judgeName string) (map[string]EvalResult, []string, error) {
	out := map[string]EvalResult{}
	var broken []string
	root := filepath.Join(run, "eval", judgeName)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		rel, err := filepath.Rel(run, p)
		if err != nil {
			return err
		}
		r, _, err := readResult(run, filepath.ToSlash(rel))
		if err != nil {
			broken = append(broken, err.Error())
			return nil
		}
		out[r.Key()] = r
		return nil
	})
	return out, broken, err
}

// readResult reads the result file rel (eval/<judge>/<key>.json, with
// slashes) of the run folder run, as parsed and as it is on disk. It must
// be a regular file of at most MaxJSON bytes that decodes, describe the
// item its name says, and be "failed" or "ok" with a score that is a number
// from 0 to 1: one judges say, so another score (a hand edit, a bug) would
// move the averages. Errors start with rel.
func readResult(run, rel string) (EvalResult, []byte, error) {
	var r EvalResult
	raw, err := regular.ReadFileAtMost(filepath.Join(run, filepath.FromSlash(rel)), MaxJSON)
	if err == nil {
		err = json.Unmarshal(raw, &r)
	}
	if err != nil {
		return r, nil, fmt.Errorf("%s: %w", rel, err)
	}
	parts := strings.SplitN(rel, "/", 3)
	switch {
	case len(parts) != 3 || parts[2] != r.Key()+".json":
		return r, nil, fmt.Errorf("%s: describes the item %s, not the one its name says", rel, r.Key())
	case r.Status == "ok" && r.Score == nil:
		return r, nil, fmt.Errorf("%s: status ok without a score", rel)
	case r.Status == "ok" && !(*r.Score >= 0 && *r.Score <= 1): // NaN fails too
		return r, nil, fmt.Errorf("%s: score %v, want a number from 0 to 1", rel, *r.Score)
	case r.Status != "ok" && r.Status != "failed":
		return r, nil, fmt.Errorf("%s: status %q, want ok or failed", rel, r.Status)
	}
	return r, raw, nil
}

// Evaluate judges every image of a run that has no successful result yet,
// with up to concurrency requests at a time. A failed item is written as
// failed (and tried again by the next Evaluate), never as a score; an item
// whose request a cancelled context stopped is not written at all, so the
// next Evaluate judges it. Items that fail Check are not judged; the summary
// lists them.
func Evaluate(ctx context.Context, run string, j judge.Judge, concurrency int, progress func(done, total int)) (Summary, error) {
	metas, broken, err := LoadMetas(run)
	if err != nil {
		return Summary{}, err
	}
	done, _, _ := LoadResults(run, j.Name()) // what cannot be read is judged again
	var todo []Meta
	s := Summary{Broken: broken}
	for _, m := range metas {
		if r, ok := done[metaKey(m)]; ok && r.Status == "ok" && r.Of(m) {
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
				if r.Status != "ok" && ctx.Err() != nil {
					continue // interrupted: not judged, not failed
				}
				path := resultPath(run, j.Name(), m)
				err := os.MkdirAll(filepath.Dir(path), 0o755)
				if err == nil {
					err = pipeline.WriteJSON(path, r)
				}
				mu.Lock()
				switch {
				case err != nil:
					s.Failed++
					s.Failures = append(s.Failures, fmt.Sprintf("%s: %v", metaKey(m), err))
				case r.Status != "ok":
					s.Failed++
					s.Failures = append(s.Failures, fmt.Sprintf("%s: %s", metaKey(m), r.Error))
				default:
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
feed:
	for _, m := range todo {
		select {
		case <-ctx.Done():
			break feed
		case work <- m:
		}
	}
	close(work)
	wg.Wait()
	if err := os.MkdirAll(filepath.Join(run, "eval", j.Name()), 0o755); err != nil {
		return s, err
	}
	return s, ctx.Err()
}

func judgeOne(ctx context.Context, run string, j judge.Judge, m Meta) EvalResult {
	r := EvalResult{ID: m.ID, Method: m.Method, Seed: m.Seed, Judge: j.Name(), ImageSHA256: m.ImageSHA256, Status: "failed"}
	png, err := ReadImage(run, m)
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
	// The judges never give another score (see package judge); this is the last guard.
	if a.Score == nil {
		r.Error = "the judge gave no score"
		return r
	}
	if !(*a.Score >= 0 && *a.Score <= 1) {
		r.Error = fmt.Sprintf("the judge gave the score %v, not a number from 0 to 1", *a.Score)
		return r
	}
	r.Status, r.Score = "ok", a.Score
	return r
}

// MaxImageBytes caps the images eval sends to a judge and report embeds:
// vision endpoints take 20 MB at most (OpenAI's limit), and a 1024² PNG of
// noise is 4 MB.
const MaxImageBytes = 20 << 20

// ReadImage reads the image of m, an item that passed Check, verifying that
// it is still the image m records (bench may have made it again since). One
// past MaxImageBytes is refused unread.
func ReadImage(run string, m Meta) ([]byte, error) {
	if m.ImageBytes > MaxImageBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a vision endpoint takes", m.Image, m.ImageBytes, MaxImageBytes)
	}
	png, err := regular.ReadFileAtMost(filepath.Join(run, filepath.FromSlash(m.Image)), m.ImageBytes)
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(png); hex.EncodeToString(sum[:]) != m.ImageSHA256 {
		return nil, fmt.Errorf("%s changed since it was checked", m.Image)
	}
	return png, nil
}
