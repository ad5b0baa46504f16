package rfbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// writeAged is writeFile with the file's mtime age ago (0: now).
func writeAged(t *testing.T, path string, v any, age time.Duration) {
	t.Helper()
	writeFile(t, path, v)
	if age > 0 {
		then := time.Now().Add(-age)
		if err := os.Chtimes(path, then, then); err != nil {
			t.Fatal(err)
		}
	}
}

// holderAt is a holder of pid on host, in this pid namespace when ns is
// self's, since a fixed time.
func holderAt(pid int, host, ns string) Holder {
	return Holder{PID: pid, Host: host, PIDNamespace: ns, Since: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
}

// A process with other settings is refused while the holder lives, naming it
// and what differs; the lock of a process that is gone is removed. A pid is
// tested only for a lock of this host and pid namespace (containers with
// host networking share the host name, not pids); any lock not refreshed for
// staleAfter is stale.
func TestLock(t *testing.T) {
	if self.PIDNamespace == "" {
		t.Skip("no pid namespace here (/proc)")
	}
	here := Settings{PromptsSHA256: "p", Config: rfnet.Default()}
	other := here
	other.Config.Steps = 2
	dead := deadPID(t)
	host, ns := self.Host, self.PIDNamespace
	for _, c := range []struct {
		name     string
		holder   Holder
		age      time.Duration // since the holder's lock was last refreshed
		settings Settings
		refused  []string // what the error says; nil: the lock is taken
		stale    string   // in the log when the holder's lock is removed
	}{
		{"a live process with other settings", holderAt(1, host, ns), 0, other,
			[]string{"in use by pid 1 on " + host + " since 2025-03-04 05:06:07", "num_inference_steps 50 here, 2 there"}, ""},
		{"a live process with the same settings", holderAt(1, host, ns), 0, here, nil, ""},
		{"a dead pid", holderAt(dead, host, ns), 0, other, nil, "its pid is gone"},
		{"our pid, an earlier start", holderAt(self.PID, host, ns), 0, other, nil, "its pid is this process's now"},
		{"our pid in another pid namespace", holderAt(self.PID, host, "other-container"), 0, other,
			[]string{"in use by pid " + strconv.Itoa(self.PID) + " on " + host}, ""},
		{"a dead pid in another pid namespace", holderAt(dead, host, "other-container"), 0, other,
			[]string{"in use by pid " + strconv.Itoa(dead)}, ""},
		{"a lock of an earlier version (no namespace)", holderAt(dead, host, ""), 0, other,
			[]string{"in use by pid " + strconv.Itoa(dead)}, ""},
		{"another host with other settings", holderAt(dead, "elsewhere", ""), 0, other,
			[]string{"pid " + strconv.Itoa(dead) + " on elsewhere", "is stale once not refreshed for 5m0s"}, ""},
		{"another host with the same settings", holderAt(dead, "elsewhere", ""), 0, here, nil, ""},
		{"another host, not refreshed", holderAt(dead, "elsewhere", ""), 7*time.Minute + 12*time.Second, other, nil,
			"removing the lock of pid " + strconv.Itoa(dead) + " on elsewhere since 2025-03-04 05:06:07 (not refreshed for 7m12s)"},
		{"a live pid, not refreshed", holderAt(1, host, ns), 6 * time.Minute, other, nil, "(not refreshed for 6m0s)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			held := filepath.Join(out, "locks", "holder.json")
			writeAged(t, held, lockFile{Holder: c.holder, Settings: c.settings}, c.age)
			var log strings.Builder
			release, err := Lock(out, here, &log)
			if c.refused != nil {
				if !errors.Is(err, ErrOtherRun) {
					t.Fatalf("%v, want ErrOtherRun", err)
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
				release() // twice is harmless
			}
			if _, err := os.Stat(held); (err == nil) == (c.stale != "") {
				t.Errorf("holder's lock: %v, want removed: %v (log %q)", err, c.stale != "", log.String())
			}
			if !strings.Contains(log.String(), c.stale) {
				t.Errorf("log %q lacks %q", log.String(), c.stale)
			}
			if entries, _ := os.ReadDir(filepath.Join(out, "locks")); (c.stale != "") != (len(entries) == 0) {
				t.Errorf("locks/ holds %d files after release", len(entries))
			}
		})
	}
}

// A lock file of another process with our host name and pid (a container
// with host networking) is neither overwritten nor removed by ours.
func TestLockNameTaken(t *testing.T) {
	out := t.TempDir()
	s := Settings{PromptsSHA256: "p", Config: rfnet.Default()}
	twin := holderAt(self.PID, self.Host, "other-container")
	theirs := filepath.Join(out, "locks", fmt.Sprintf("%s-%d-%d.json", self.Host, self.PID, seq.Load()+1))
	writeFile(t, theirs, lockFile{Holder: twin, Settings: s})
	release, err := Lock(out, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	release()
	var got lockFile
	if err := readJSON(theirs, &got); err != nil || !got.Holder.same(twin) {
		t.Fatalf("the twin's lock: %+v, %v", got, err)
	}
}

// Lock refuses a folder whose bench.json describes other settings before
// the model loads; the model's hash, known only after, is Start's to compare.
func TestLockChecksBenchJSON(t *testing.T) {
	out := t.TempDir()
	here := Settings{PromptsSHA256: "p", Config: rfnet.Default()}
	run := Run{PromptsSHA256: "p", Config: rfnet.Default(), Model: rfnet.ModelInfo{Hash: "aaa"}}
	if err := Start(out, run); err != nil {
		t.Fatal(err)
	}
	release, err := Lock(out, here, nil)
	if err != nil {
		t.Fatalf("same prompts and config: %v", err)
	}
	release()
	steps := here
	steps.Config.Steps = 7
	if _, err := Lock(out, steps, nil); err == nil || !strings.Contains(err.Error(), "bench.json describes another run (num_inference_steps 7 here, 50 there)") {
		t.Fatalf("other steps: %v", err)
	}
	prompts := here
	prompts.PromptsSHA256 = "q"
	if _, err := Lock(out, prompts, nil); err == nil || !strings.Contains(err.Error(), "the prompt set") {
		t.Fatalf("other prompts: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(out, "locks")); len(entries) != 0 {
		t.Fatalf("a refused Lock left %d files", len(entries))
	}
	run.Model.Hash = "bbb"
	if err := Start(out, run); err == nil || !strings.Contains(err.Error(), "the model's SHA-256 bbb… here, aaa… there") {
		t.Fatalf("Start with another model: %v", err)
	}
}

// A claim of a process that is gone, or one not refreshed for staleAfter, is
// taken over; a live process's claim, here, in another pid namespace or on
// another host, leaves the item to it, and the run lists it as busy.
func TestClaims(t *testing.T) {
	if self.PIDNamespace == "" {
		t.Skip("no pid namespace here (/proc)")
	}
	r, _ := tinyRunner(t, "")
	items := Items(DefaultPrompts()[:1], []string{"sd"}, 1)
	host, ns := self.Host, self.PIDNamespace
	for _, c := range []struct {
		name   string
		holder Holder
		age    time.Duration
		taken  string // in the log when the claim is taken over
	}{
		{"a dead pid", holderAt(deadPID(t), host, ns), 0, "(its pid is gone)"},
		{"a live pid", holderAt(1, host, ns), 0, ""},
		{"our pid in another pid namespace", holderAt(self.PID, host, "other-container"), 0, ""},
		{"another host", holderAt(deadPID(t), "elsewhere", ""), 0, ""},
		{"another host, not refreshed", holderAt(deadPID(t), "elsewhere", ""), 7 * time.Minute, "on elsewhere since 2025-03-04 05:06:07 (not refreshed for 7m0s)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r.Out = t.TempDir()
			var log strings.Builder
			r.Log = &log
			path := filepath.Join(r.Out, "images", "sd", items[0].Prompt.ID+"-s0.claim")
			writeAged(t, path, c.holder, c.age)
			s, err := r.Run(context.Background(), items)
			taken := c.taken != ""
			if err != nil || (s.Generated == 1) != taken || (len(s.Busy) == 1) == taken {
				t.Fatalf("%+v, %v (log %q)", s, err, log.String())
			}
			_, err = os.Stat(path)
			if taken && (err == nil || !strings.Contains(log.String(), "taking over the claim of pid") || !strings.Contains(log.String(), c.taken)) {
				t.Fatalf("claim left (%v) or not logged: %q", err, log.String())
			}
			want := "images/sd/" + items[0].Prompt.ID + "-s0.claim (" + c.holder.String() + ")"
			if !taken && (err != nil || s.Busy[0] != want) {
				t.Fatalf("the live claim: %v, busy %q, want %q", err, s.Busy, want)
			}
		})
	}
}

// shortHeartbeat makes heartbeats and staleness fast for one test.
func shortHeartbeat(t *testing.T, every, stale time.Duration) {
	t.Helper()
	savedEvery, savedStale := heartbeatEvery, staleAfter
	heartbeatEvery, staleAfter = every, stale
	t.Cleanup(func() { heartbeatEvery, staleAfter = savedEvery, savedStale })
}

// mtimeAge is how long ago path was modified.
func mtimeAge(t *testing.T, path string) time.Duration {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(fi.ModTime())
}

// waitRefreshed waits until path's mtime is recent again.
func waitRefreshed(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); mtimeAge(t, path) > time.Minute; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s was not refreshed", path)
		}
	}
}

// While a lock and a claim are held, their mtimes are refreshed; release
// stops the refreshing goroutine (none is left running) and removes the file.
func TestHeartbeat(t *testing.T) {
	shortHeartbeat(t, 5*time.Millisecond, time.Hour)
	out := t.TempDir()
	before := runtime.NumGoroutine()
	release, err := Lock(out, Settings{PromptsSHA256: "p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	locks, _ := filepath.Glob(filepath.Join(out, "locks", "*.json"))
	claimPath := filepath.Join(out, "x.claim")
	releaseClaim, holder, err := claim(claimPath, nil)
	if err != nil || holder != nil || len(locks) != 1 {
		t.Fatalf("claim: %v %v; locks %v", err, holder, locks)
	}
	hourAgo := time.Now().Add(-time.Hour)
	for _, p := range []string{locks[0], claimPath} {
		os.Chtimes(p, hourAgo, hourAgo)
		waitRefreshed(t, p)
	}
	release()
	releaseClaim()
	for _, p := range []string{locks[0], claimPath} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after release", p)
		}
	}
	// Were a refresher still running, it would refresh these copies.
	writeAged(t, claimPath, self, time.Hour)
	writeAged(t, locks[0], lockFile{Holder: self}, time.Hour)
	time.Sleep(50 * time.Millisecond)
	for _, p := range []string{locks[0], claimPath} {
		if mtimeAge(t, p) < time.Minute {
			t.Errorf("%s refreshed after release", p)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), before)
		}
	}
}

// A process whose claim was taken over while it was paused neither refreshes
// nor removes the new holder's claim.
func TestClaimTakenOverWhilePaused(t *testing.T) {
	shortHeartbeat(t, 5*time.Millisecond, time.Hour)
	path := filepath.Join(t.TempDir(), "x.claim")
	release, _, err := claim(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	newcomer := holderAt(1, "elsewhere", "")
	writeAged(t, path, newcomer, time.Hour)
	time.Sleep(50 * time.Millisecond)
	release()
	var h Holder
	if err := readJSON(path, &h); err != nil || !h.same(newcomer) {
		t.Fatalf("the newcomer's claim: %v %v", h, err)
	}
	if mtimeAge(t, path) < time.Minute {
		t.Fatal("the newcomer's claim was refreshed by the process it replaced")
	}
}

// A claim found stale that proves live when judged again, in its place put
// aside, is put back whole, and nothing is left beside it.
func TestRemoveStalePutsBackLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.claim")
	live := holderAt(1, "elsewhere", "")
	writeFile(t, path, live)
	var log strings.Builder
	if removeStale(path, "taking over the claim", staleAfter, &log) {
		t.Fatal("a live claim was removed")
	}
	var h Holder
	if err := readJSON(path, &h); err != nil || !h.same(live) || log.Len() != 0 {
		t.Fatalf("after: %v %v, log %q", h, err, log.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files in the folder", len(entries))
	}
}

// Items another process held when their turn came are looked at again at the
// end: one it has finished (or given up) meanwhile is done, not left as busy.
func TestBusyItemsLookedAtAgain(t *testing.T) {
	out := t.TempDir()
	r, _ := tinyRunner(t, out)
	items := Items(DefaultPrompts()[:2], []string{"sd"}, 1)
	path := filepath.Join(out, "images", "sd", items[0].Prompt.ID+"-s0.claim")
	writeFile(t, path, holderAt(1, "elsewhere", ""))
	r.Progress = func(done, total int) {
		if done == total {
			os.Remove(path) // the holder gave the item up
		}
	}
	s, err := r.Run(context.Background(), items)
	if err != nil || s.Generated != 2 || len(s.Busy) != 0 {
		t.Fatalf("%+v, %v", s, err)
	}
	finished(t, out, items[0])
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
