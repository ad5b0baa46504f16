package rfbench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// Processes with the same settings and other methods and seeds that start
// together all end up in bench.json: none loses another's update.
func TestStartConcurrent(t *testing.T) {
	for round := 0; round < 5; round++ {
		out := t.TempDir()
		var wg sync.WaitGroup
		errs := make([]error, 2*len(MethodNames()))
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = Start(out, Run{PromptsSHA256: "p", Config: rfnet.Default(), Model: rfnet.ModelInfo{Hash: "h"},
					Methods: []string{MethodNames()[i%len(MethodNames())]}, Seeds: i + 1})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Start %d: %v", i, err)
			}
		}
		run, err := ReadRun(out)
		if err != nil {
			t.Fatal(err)
		}
		got := append([]string(nil), run.Methods...)
		sort.Strings(got)
		want := MethodNames()
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) || run.Seeds != len(errs) {
			t.Fatalf("round %d: methods %v, seeds %d; want %v, %d", round, got, run.Seeds, want, len(errs))
		}
		if _, err := os.Stat(filepath.Join(out, "bench.json.lock")); err == nil {
			t.Fatal("bench.json.lock left behind")
		}
	}
}

// The bench.json lock of a process that died holding it is removed; one held
// longer than a Start can take is given up on with an error naming it.
func TestStartLockStale(t *testing.T) {
	saved := startWait
	t.Cleanup(func() { startWait = saved })
	startWait = 200 * time.Millisecond
	run := Run{PromptsSHA256: "p", Model: rfnet.ModelInfo{Hash: "h"}}
	out := t.TempDir()
	lock := filepath.Join(out, "bench.json.lock")
	writeAged(t, lock, holderAt(1, "elsewhere", ""), time.Minute)
	if err := Start(out, run); err != nil {
		t.Fatalf("with an old lock: %v", err)
	}
	writeFile(t, lock, holderAt(deadPID(t), self.Host, self.PIDNamespace))
	if err := Start(out, run); err != nil && self.PIDNamespace != "" {
		t.Fatalf("with a dead process's lock: %v", err)
	}
	// A live holder that keeps it fresh, for longer than Start waits.
	shortHeartbeat(t, 5*time.Millisecond, staleAfter)
	writeFile(t, lock, holderAt(1, "elsewhere", ""))
	stop := heartbeat(lock, holderAt(1, "elsewhere", ""))
	defer stop()
	err := Start(out, run)
	if err == nil || !strings.Contains(err.Error(), "bench.json.lock: held by pid 1 on elsewhere") {
		t.Fatalf("with a live lock: %v", err)
	}
}

// Differences names every setting that differs and nothing else; the
// model's hash counts only when both sides know it.
func TestDifferences(t *testing.T) {
	a := Settings{PromptsSHA256: "p", Config: rfnet.Default()}
	b := a
	if d := Differences(a, b); len(d) != 0 {
		t.Fatalf("same settings: %v", d)
	}
	b.Model = &rfnet.ModelInfo{Hash: "h", Prediction: "epsilon"}
	if d := Differences(a, b); len(d) != 0 {
		t.Fatalf("a model on one side only: %v", d)
	}
	a.Model = &rfnet.ModelInfo{Hash: "g", Prediction: "v_prediction", ModelType: "sd21"}
	b.Config.Width, b.Config.Guidance = 256, 3
	d := strings.Join(Differences(a, b), "; ")
	for _, want := range []string{"width 512 here, 256 there", "guidance_scale 7.5 here, 3 there", "the model's SHA-256 g… here, h… there",
		"the model's prediction v_prediction here, epsilon there"} {
		if !strings.Contains(d, want) {
			t.Errorf("%q lacks %q", d, want)
		}
	}
	if strings.Contains(d, "model_type") {
		t.Errorf("%q compares a model_type known on one side only", d)
	}
}

// A bench.json written before two config keys and a method were renamed
// (see rfnet.Config and renamedMethods) reads with their values, and
// describes the same run as a bench of the same settings today: that bench
// resumes it, the old method kept under its old name.
func TestEarlierBenchJSONReads(t *testing.T) {
	cfg := rfnet.Default()
	cfg.ReferenceConstraint, cfg.SteeringKeys = false, []string{"up.1.0.0"}
	raw, err := json.Marshal(Run{Version: 1, PromptsSHA256: "p", Methods: []string{"sd", "rfnet-no-guidance"}, Seeds: 1, Config: cfg,
		Model: rfnet.ModelInfo{Hash: "h", ModelType: "sd21-base"}})
	if err != nil {
		t.Fatal(err)
	}
	old := strings.NewReplacer(`"reference_constraint"`, `"guidance_constraint"`, `"steering_attn_keys"`, `"guidance_attn_keys"`).Replace(string(raw))
	if old == string(raw) {
		t.Fatal("the test's bench.json has no renamed key")
	}
	out := t.TempDir()
	writeFile(t, filepath.Join(out, "bench.json"), json.RawMessage(old))
	run, err := ReadRun(out)
	if err != nil {
		t.Fatal(err)
	}
	if run.Config.ReferenceConstraint || fmt.Sprint(run.Config.SteeringKeys) != "[up.1.0.0]" {
		t.Fatalf("read reference_constraint %v, steering_attn_keys %v; want false, [up.1.0.0]", run.Config.ReferenceConstraint, run.Config.SteeringKeys)
	}
	if err := Start(out, Run{Version: 1, PromptsSHA256: "p", Methods: []string{"sd"}, Seeds: 1, Config: cfg,
		Model: rfnet.ModelInfo{Hash: "h", ModelType: "sd21-base"}}); err != nil {
		t.Fatalf("the same settings today: %v", err)
	}
	if run, err = ReadRun(out); err != nil || fmt.Sprint(run.Methods) != "[sd rfnet-no-guidance]" {
		t.Fatalf("after Start: methods %v, %v; want the earlier run's", run.Methods, err)
	}
}

// A bench.json from before the tokenizer split was recorded was tokenized
// with open_clip's split: a run with that split resumes it, one with
// diffusers' (the default now) is refused.
func TestDifferencesTokenizerSplit(t *testing.T) {
	old := Run{PromptsSHA256: "p", Config: rfnet.Default(), Model: rfnet.ModelInfo{Hash: "h", ModelType: "sd21-base", Prediction: "epsilon"}}
	now := old
	now.Model.TokenizerSplit = "open-clip"
	if d := Differences(now.Settings(), old.Settings()); len(d) != 0 {
		t.Fatalf("open-clip against an unrecorded split: %v", d)
	}
	now.Model.TokenizerSplit = "diffusers"
	if d := strings.Join(Differences(now.Settings(), old.Settings()), "; "); !strings.Contains(d, "the model's tokenizer_split diffusers here, open-clip there") {
		t.Fatalf("diffusers against an unrecorded split: %q", d)
	}
	var unloaded Run
	unloaded.PromptsSHA256, unloaded.Config = "p", rfnet.Default()
	if d := Differences(unloaded.Settings(), now.Settings()); len(d) != 0 {
		t.Fatalf("a run whose model has not loaded: %v", d)
	}
}
