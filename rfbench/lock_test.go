package rfbench

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// deadPID is the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func writeFile(t *testing.T, path string, v any) {
	t.Helper()
	raw, _ := json.Marshal(v)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A process with other settings is refused while the holder lives, naming it
// and what differs; the lock of a process that is gone is removed; a lock
// from another host is never taken for stale.
func TestLock(t *testing.T) {
	here := Settings{PromptsSHA256: "p", Weights: "w", Config: rfnet.Default()}
	other := here
	other.Config.Steps = 2
	since := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	dead := deadPID(t)
	for _, c := range []struct {
		name     string
		holder   Holder
		settings Settings
		refused  []string // what the error says; nil: the lock is taken
		stale    bool     // the holder's lock is removed
	}{
		{"a live process with other settings", Holder{1, self.Host, since}, other,
			[]string{"in use by pid 1 on " + self.Host + " since 2025-03-04 05:06:07", "num_inference_steps 50 here, 2 there"}, false},
		{"a live process with the same settings", Holder{1, self.Host, since}, here, nil, false},
		{"a dead pid", Holder{dead, self.Host, since}, other, nil, true},
		{"our pid, an earlier start", Holder{self.PID, self.Host, since}, other, nil, true},
		{"another host with other settings", Holder{dead, "elsewhere", since}, other,
			[]string{"pid " + strconv.Itoa(dead) + " on elsewhere", "if elsewhere is gone, delete"}, false},
		{"another host with the same settings", Holder{dead, "elsewhere", since}, here, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			held := filepath.Join(out, "locks", "holder.json")
			writeFile(t, held, lockFile{Holder: c.holder, Fingerprint: c.settings.fingerprint(), Settings: c.settings})
			var log strings.Builder
			release, err := Lock(out, here, &log)
			if c.refused != nil {
				if err == nil {
					t.Fatal("not refused")
				}
				for _, want := range c.refused {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				release()
			}
			if _, err := os.Stat(held); (err == nil) == c.stale {
				t.Errorf("holder's lock: %v, want removed: %v (log %q)", err, c.stale, log.String())
			}
			if entries, _ := os.ReadDir(filepath.Join(out, "locks")); c.stale != (len(entries) == 0) {
				t.Errorf("locks/ holds %d files after release", len(entries))
			}
		})
	}
}

// A claim of a process that is gone is taken over; a live process's claim,
// here or on another host, leaves the item to it.
func TestClaims(t *testing.T) {
	r, _ := tinyRunner(t, "")
	items := Items(DefaultPrompts()[:1], []string{"sd"}, 1)
	for _, c := range []struct {
		name   string
		holder Holder
		taken  bool
	}{
		{"a dead pid", Holder{deadPID(t), self.Host, time.Now()}, true},
		{"a live pid", Holder{1, self.Host, time.Now()}, false},
		{"another host", Holder{deadPID(t), "elsewhere", time.Now()}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r.Out = t.TempDir()
			var log strings.Builder
			r.Log = &log
			path := filepath.Join(r.Out, "images", "sd", items[0].Prompt.ID+"-s0.claim")
			writeFile(t, path, c.holder)
			s, err := r.Run(context.Background(), items)
			if err != nil || (s.Generated == 1) != c.taken || (len(s.Busy) == 1) == c.taken {
				t.Fatalf("%+v, %v (log %q)", s, err, log.String())
			}
			_, err = os.Stat(path)
			if c.taken && (err == nil || !strings.Contains(log.String(), "taking over the claim of pid")) {
				t.Fatalf("claim left (%v) or not logged: %q", err, log.String())
			}
			if !c.taken && (err != nil || !strings.Contains(s.Busy[0], c.holder.Host)) {
				t.Fatalf("the live claim: %v, busy %v", err, s.Busy)
			}
		})
	}
}

// Two runners with the same settings over one folder at the same time make
// every item exactly once between them.
func TestRunnersShareFolder(t *testing.T) {
	out := t.TempDir()
	items := Items(DefaultPrompts()[:3], []string{"sd"}, 2)
	var sums [2]Summary
	var errs [2]error
	var wg sync.WaitGroup
	for i := range sums {
		r, _ := tinyRunner(t, out)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], errs[i] = r.Run(context.Background(), items)
		}()
	}
	wg.Wait()
	generated := 0
	for i, s := range sums {
		if errs[i] != nil || s.Failed != 0 || s.Generated+s.Skipped+len(s.Busy) != len(items) {
			t.Fatalf("runner %d: %+v, %v", i, s, errs[i])
		}
		generated += s.Generated
	}
	if generated != len(items) {
		t.Fatalf("%d generations for %d items: %+v", generated, len(items), sums)
	}
	for _, it := range items {
		finished(t, out, it)
	}
	claims, _ := filepath.Glob(filepath.Join(out, "images", "sd", "*.claim"))
	if len(claims) != 0 {
		t.Fatalf("claims left: %v", claims)
	}
}

// panickyPlanner panics on one caption, as a bug deep in a model would.
type panickyPlanner struct{ caption string }

func (p panickyPlanner) Plan(ctx context.Context, caption string) (*llm.Plan, error) {
	if caption == p.caption {
		panic("planner bug")
	}
	return llm.Offline{}.Plan(ctx, caption)
}

// A panic in one item fails that item, with the panic and where it happened
// in the log; the run goes on, and nothing of the item looks finished.
func TestPanickingItem(t *testing.T) {
	out := t.TempDir()
	r, _ := tinyRunner(t, out)
	prompts := DefaultPrompts()[:2]
	r.Planner = panickyPlanner{prompts[0].Prompt}
	var log strings.Builder
	r.Log = &log
	items := Items(prompts, []string{"rfnet"}, 1)
	s, err := r.Run(context.Background(), items)
	if err != nil || s.Generated != 1 || s.Failed != 1 {
		t.Fatalf("%+v, %v", s, err)
	}
	for _, want := range []string{items[0].Key() + " failed: panic: planner bug", "panickyPlanner"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	_, meta := itemPaths(items[0])
	if _, err := Check(out, meta); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the item that panicked: %v, want no sidecar", err)
	}
	finished(t, out, items[1])
	if claims, _ := filepath.Glob(filepath.Join(out, "images", "rfnet", "*.claim")); len(claims) != 0 {
		t.Errorf("claims left: %v", claims)
	}
}
