package rfbench

// Several bench processes may work in one run folder if they make the same
// images: each registers in locks/ (one with other settings is refused), and
// each claims an item (images/<method>/<id>-s<seed>.claim) before making it,
// so no two make the same one. A process that died leaves its files behind.
// While a process runs, a goroutine refreshes the mtime of its lock file and
// of the claim it holds every HeartbeatEvery; a file not refreshed for
// StaleAfter is stale, whatever host wrote it, so a crashed machine's claims
// are taken over without anyone deleting them. Sooner than that, a file is
// stale when its pid is gone, but only if it was written on this host and in
// this pid namespace: containers with host networking share a host name, not
// pids.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rfnet/rfnet-native/internal/regular"
)

const (
	// HeartbeatEvery is how often a process refreshes the mtime of its lock
	// file and of the claim it holds.
	HeartbeatEvery = 30 * time.Second
	// StaleAfter is how long a lock or claim may go unrefreshed before it is
	// stale: ten heartbeats, well above the clock skew between machines that
	// share a volume and the pauses of a busy file server.
	StaleAfter = 5 * time.Minute
)

// heartbeatEvery and staleAfter are HeartbeatEvery and StaleAfter; tests
// shorten them.
var heartbeatEvery, staleAfter = HeartbeatEvery, StaleAfter

// Holder identifies a process. Since tells apart two processes that had the
// same pid: a restarted container runs bench as pid 1 again.
type Holder struct {
	PID  int    `json:"pid"`
	Host string `json:"host"`
	// PIDNamespace is the kernel's boot id and the inode of the holder's pid
	// namespace; empty where /proc does not say. Only a holder with ours has
	// a pid that means something here.
	PIDNamespace string    `json:"pid_namespace,omitempty"`
	Since        time.Time `json:"since"`
}

func (h Holder) String() string {
	return fmt.Sprintf("pid %d on %s since %s", h.PID, h.Host, h.Since.Format(time.DateTime))
}

// same reports whether h and o are one process.
func (h Holder) same(o Holder) bool {
	return h.PID == o.PID && h.Host == o.Host && h.PIDNamespace == o.PIDNamespace && h.Since.Equal(o.Since)
}

// self is this process.
var self = Holder{PID: os.Getpid(), Host: hostname(), PIDNamespace: pidNamespace(), Since: time.Now()}

// seq makes this process's file names unique.
var seq atomic.Int64

func hostname() string {
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "unknown-host"
}

// pidNamespace names this process's pid namespace across machines: the
// boot id tells the kernel (containers share their host's), the inode of
// /proc/self/ns/pid the namespace within it ("pid:[4026531836]").
func pidNamespace() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
}

// gone says why the holder h is known to have exited, or "" when it may
// still run. Its pid can be checked only when it ran on this host in this
// pid namespace (both known): then it is gone when its pid is (ESRCH; EPERM
// means it runs as another user), or when the pid is ours but the start time
// is not.
func gone(h Holder) string {
	switch {
	case h.Host != self.Host || h.PIDNamespace == "" || h.PIDNamespace != self.PIDNamespace:
		return ""
	case h.PID <= 0:
		return fmt.Sprintf("pid %d", h.PID)
	case h.PID == self.PID:
		if h.Since.Equal(self.Since) {
			return ""
		}
		return "its pid is this process's now"
	case errors.Is(syscall.Kill(h.PID, 0), syscall.ESRCH):
		return "its pid is gone"
	}
	return ""
}

// inspect reads the lock or claim at path into v (a *Holder or a *lockFile)
// and says why it is stale, or "" while its holder may be at work: it does
// not decode (a live process writes its files whole), it was not refreshed
// for maxAge, or its holder is gone. An error is one reading the file
// (fs.ErrNotExist: it was released meanwhile).
func inspect(path string, v any, maxAge time.Duration) (stale string, err error) {
	raw, err := regular.ReadFileAtMost(path, MaxJSON)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Sprintf("it does not decode: %v", err), nil
	}
	if age := time.Since(fi.ModTime()); age > maxAge {
		return "not refreshed for " + age.Round(time.Second).String(), nil
	}
	var h Holder
	json.Unmarshal(raw, &h)
	return gone(h), nil
}

// holds reports whether the lock or claim at path is h's.
func holds(path string, h Holder) bool {
	var x Holder
	return readJSON(path, &x) == nil && x.same(h)
}

// heartbeat refreshes the mtime of path every heartbeatEvery while the file
// is still h's (another process may have taken it over after a long pause of
// ours: then it is theirs to refresh). stop ends it and waits until it has.
func heartbeat(path string, h Holder) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	every := heartbeatEvery
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				if holds(path, h) {
					now := time.Now()
					os.Chtimes(path, now, now)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}

// lockFile is the content of a file in locks/.
type lockFile struct {
	Holder
	Settings Settings `json:"settings"`
}

// Lock registers this process in the run folder out for the settings s and
// returns the function that unregisters it (it may be called more than once).
// It fails while a live process with other settings is registered, naming
// that process and what differs, and when out's bench.json describes a run
// with other settings (the model is compared by Start, once it has loaded).
// It removes (and logs) the registrations that are stale.
func Lock(out string, s Settings, log io.Writer) (release func(), err error) {
	dir := filepath.Join(out, "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("rfbench: %w", err)
	}
	// Writing ours before reading the others means two processes starting
	// together see each other: if they differ, both refuse, and neither runs
	// mixed. The name is created exclusively: a container restarted with our
	// pid, or another one with host networking, may have written it.
	me := lockFile{Holder: self, Settings: s}
	var path string
	for {
		path = filepath.Join(dir, fmt.Sprintf("%s-%d-%d.json", self.Host, self.PID, seq.Add(1)))
		err := createExclusive(path, me)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("rfbench: %w", err)
		}
	}
	stop := heartbeat(path, self)
	var once sync.Once
	release = func() {
		once.Do(func() {
			stop()
			if holds(path, self) {
				os.Remove(path)
			}
		})
	}
	if err := checkOthers(out, dir, path, s, log); err != nil {
		release()
		return nil, err
	}
	if old, err := readRun(out); err == nil {
		if diff := Differences(s, old.Settings()); len(diff) > 0 {
			release()
			return nil, fmt.Errorf("rfbench: %s describes %w (%s): use another run folder, or delete it to start over",
				filepath.Join(out, "bench.json"), ErrOtherRun, strings.Join(diff, "; "))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		release()
		return nil, err
	}
	return release, nil
}

// checkOthers goes over the lock files in dir other than ours (path).
func checkOthers(out, dir, path string, s Settings, log io.Writer) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("rfbench: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if p == path || strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		// Twice: a lock found stale may prove live when judged again.
		for try := 0; try < 2; try++ {
			var other lockFile
			stale, err := inspect(p, &other, staleAfter)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				// released meanwhile
			case err != nil:
				return fmt.Errorf("rfbench: %w", err)
			case stale != "":
				if !removeStale(p, "removing the lock", staleAfter, log) {
					continue
				}
			default:
				if diff := Differences(s, other.Settings); len(diff) > 0 {
					return fmt.Errorf("rfbench: %s is in use by %s for %w with other settings (%s): wait for it to finish, or use another run folder "+
						"(if that process is gone, its lock %s is stale once not refreshed for %s)", out, other.Holder, ErrOtherRun, strings.Join(diff, "; "), p, staleAfter)
				}
				fmt.Fprintf(orDiscard(log), "rfnet-native: bench: sharing %s with %s (same settings): each item is claimed by one process\n", out, other.Holder)
			}
			break
		}
	}
	return nil
}

// claim takes the item whose claim file is path for this process and returns
// the function that gives it up. When a live process has the item, it
// returns that process instead. A stale claim is taken over (and logged).
func claim(path string, log io.Writer) (release func(), holder *Holder, err error) {
	for try := 0; try < 3; try++ {
		err := createExclusive(path, self)
		if err == nil {
			stop := heartbeat(path, self)
			return func() {
				stop()
				// Ours unless another process took it over after a long
				// pause of ours; then it is theirs to remove.
				if holds(path, self) {
					os.Remove(path)
				}
			}, nil, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, nil, err
		}
		var h Holder
		stale, err := inspect(path, &h, staleAfter)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // given up meanwhile
		case err != nil:
			return nil, nil, err
		case stale == "":
			return nil, &h, nil
		}
		removeStale(path, "taking over the claim", staleAfter, log)
	}
	return nil, nil, fmt.Errorf("rfbench: %s: could not claim it", path)
}

// removeStale removes the lock or claim at path, found stale (see inspect
// for maxAge), and logs it, starting with action; it reports false when the
// file proved live. Between that finding and the removal the file may
// have been replaced: another process took the stale one over and wrote its
// own. So the file is first renamed away (one process wins the rename) and
// judged again in its new place; only a stale one is removed.
//
// A live one is put back with a link, which fails when the name is taken.
// That happens when a third process found the name free in the instant it
// was away and claimed the item itself. Then neither file is touched
// further: removing the newcomer's claim would hand the item to the process
// put aside while the newcomer goes on making it, and moving that one's
// claim over it would do the same the other way round. Both processes make
// the item; its files are written atomically and are the same images (same
// seeds and settings), so the cost is one duplicated generation, in a race
// that needs a claim found stale, taken over and raced for within
// microseconds. Each process removes a claim only while it holds its
// content (see claim), so neither removes the other's.
func removeStale(path, action string, maxAge time.Duration, log io.Writer) (removed bool) {
	tmp := path + ".stale-" + randomSuffix()
	if os.Rename(path, tmp) != nil {
		return true // gone already
	}
	defer os.Remove(tmp)
	var h Holder
	stale, err := inspect(tmp, &h, maxAge)
	if err != nil || stale == "" {
		if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
			fmt.Fprintf(orDiscard(log), "rfnet-native: bench: %s: the file of %s, put aside for a moment, was replaced by another process's meanwhile: both may make the item\n", path, h)
		}
		return false
	}
	who := "an unknown process"
	if h.PID != 0 || h.Host != "" {
		who = h.String()
	}
	fmt.Fprintf(orDiscard(log), "rfnet-native: bench: %s of %s (%s): %s\n", action, who, stale, path)
	return true
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// createExclusive writes v as JSON to path unless path exists (an error
// wrapping fs.ErrExist). The file appears whole: it is written under a
// temporary name and linked into place, and a link, unlike a rename, fails
// when the name is taken.
func createExclusive(path string, v any) error {
	raw, _ := json.Marshal(v)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(raw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
