package rfbench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// Settings are what a run's images depend on. The processes that share a run
// folder, and the folder's bench.json, must agree on them; Differences is the
// one place that compares them.
//
// The --weights string is not among them: "sd21-base", the repository's full
// name and the cached snapshot's path name one checkpoint, and one path may
// hold another checkpoint tomorrow. The model as loaded decides instead: its
// weights' hash, and the variant and prediction type it was loaded as (one
// file loads as epsilon or v-prediction, by its scheduler config or a flag,
// with the same hash). These are known only once the model has loaded
// (hashing reads every byte), so Lock, before the load, compares the prompt
// set and the configuration, and Start, after it and before any image is
// made, compares the model too: a process that loaded another model than
// bench.json names is refused there.
type Settings struct {
	PromptsSHA256 string       `json:"prompts_sha256"`
	Config        rfnet.Config `json:"config"`
	// Model identifies the model as loaded (see identity); nil before it
	// has loaded. A field is compared when both sides have it.
	Model *rfnet.ModelInfo `json:"model,omitempty"`
}

// ErrOtherRun is wrapped when a run folder holds, or is in use by, a run with
// other settings: the caller takes another folder, or deletes this one.
var ErrOtherRun = errors.New("another run")

// identity is the part of m that identifies the model as loaded: the
// SHA-256 of its weight files, its variant, its prediction type and how its
// tokenizer cuts prompts (a "!" is another token in each split).
func identity(m rfnet.ModelInfo) *rfnet.ModelInfo {
	return &rfnet.ModelInfo{Hash: m.Hash, ModelType: m.ModelType, Prediction: m.Prediction, TokenizerSplit: rfnet.TokenizerSplitOf(m)}
}

// Settings are the settings of the run r describes.
func (r Run) Settings() Settings {
	return Settings{PromptsSHA256: r.PromptsSHA256, Config: r.Config, Model: identity(r.Model)}
}

// Differences lists what differs between the settings a (here) and b (there),
// each as "what, here, there"; none when the runs may share a folder.
func Differences(a, b Settings) []string {
	var out []string
	if a.PromptsSHA256 != b.PromptsSHA256 {
		out = append(out, fmt.Sprintf("the prompt set, SHA-256 %.12s… here, %.12s… there", a.PromptsSHA256, b.PromptsSHA256))
	}
	var ca, cb map[string]json.RawMessage
	ja, _ := json.Marshal(a.Config)
	jb, _ := json.Marshal(b.Config)
	json.Unmarshal(ja, &ca)
	json.Unmarshal(jb, &cb)
	keys := make([]string, 0, len(ca))
	for k := range ca {
		keys = append(keys, k)
	}
	for k := range cb {
		if _, ok := ca[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !bytes.Equal(ca[k], cb[k]) {
			out = append(out, fmt.Sprintf("%s %s here, %s there", k, orUnset(ca[k]), orUnset(cb[k])))
		}
	}
	if a.Model == nil || b.Model == nil {
		return out
	}
	for _, f := range []struct{ key, x, y string }{
		{"hash", a.Model.Hash, b.Model.Hash},
		{"model_type", a.Model.ModelType, b.Model.ModelType},
		{"prediction", a.Model.Prediction, b.Model.Prediction},
		{"tokenizer_split", a.Model.TokenizerSplit, b.Model.TokenizerSplit},
	} {
		switch {
		case f.x == "" || f.y == "" || f.x == f.y:
		case f.key == "hash":
			out = append(out, fmt.Sprintf("the model's SHA-256 %.12s… here, %.12s… there", f.x, f.y))
		case f.key == "tokenizer_split":
			out = append(out, fmt.Sprintf("the model's tokenizer_split %s here, %s there (how prompts are cut around special tokens such as SD 2.x's \"!\": load with the %s split to resume the run there)", f.x, f.y, f.y))
		default:
			out = append(out, fmt.Sprintf("the model's %s %s here, %s there", f.key, f.x, f.y))
		}
	}
	return out
}

func orUnset(v json.RawMessage) string {
	if v == nil {
		return "unset"
	}
	return string(v)
}

// Start writes bench.json, or checks that the run folder's bench.json
// describes a run with the same settings (see Differences) and adds run's
// methods and seeds to it. Processes starting together take turns under
// bench.json.lock, so that none of them loses another's methods.
func Start(out string, run Run) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("rfbench: %w", err)
	}
	unlock, err := lockStart(filepath.Join(out, "bench.json.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(out, "bench.json")
	old, err := readRun(out)
	switch {
	case err == nil:
		if diff := Differences(run.Settings(), old.Settings()); len(diff) > 0 {
			return fmt.Errorf("rfbench: %s describes %w (%s): use another run folder, or delete it to start over", path, ErrOtherRun, strings.Join(diff, "; "))
		}
		// Methods and seeds may grow between runs; keep the union.
		run.Methods = union(old.Methods, run.Methods)
		run.Seeds = max(old.Seeds, run.Seeds)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return pipeline.WriteJSON(path, run)
}

// startWait bounds how long Start waits for bench.json.lock. A process holds
// it for one read and one write of bench.json, so one older than this was
// left by a process that died holding it.
var startWait = 30 * time.Second

// lockStart takes the lock file path, waiting while another process has it.
func lockStart(path string) (unlock func(), err error) {
	deadline := time.Now().Add(startWait)
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		err := createExclusive(path, self)
		if err == nil {
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("rfbench: %w", err)
		}
		var h Holder
		stale, err := inspect(path, &h, startWait)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("rfbench: %w", err)
		case stale != "":
			removeStale(path, "removing the bench.json lock", startWait, nil)
		case time.Now().After(deadline):
			return nil, fmt.Errorf("rfbench: %s: held by %s for longer than %s; delete it if no bench is starting", path, h, startWait)
		default:
			time.Sleep(pause)
		}
	}
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		found := false
		for _, y := range out {
			found = found || x == y
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

// ReadRun reads a run folder's bench.json.
func ReadRun(out string) (Run, error) {
	r, err := readRun(out)
	if errors.Is(err, fs.ErrNotExist) {
		return r, fmt.Errorf("rfbench: %s is not a benchmark run folder: %w", out, err)
	}
	return r, err
}

// readRun is ReadRun with a missing bench.json an error that is fs.ErrNotExist.
func readRun(out string) (Run, error) {
	var r Run
	path := filepath.Join(out, "bench.json")
	raw, err := regular.ReadFileAtMost(path, MaxJSON)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return r, err
		}
		return r, fmt.Errorf("rfbench: %w", err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("rfbench: %s: %w", path, err)
	}
	return r, nil
}
