package rfbench

// Several bench processes may work in one run folder if they make the same
// images: each registers in locks/ (one with other settings is refused), and
// each claims an item (images/<method>/<id>-s<seed>.claim) before making it,
// so no two make the same one. A process that died leaves its files behind;
// they are stale once its pid is gone from this host. A file from another
// host is never taken for stale, since its pid cannot be checked from here.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// Holder identifies a process. Since tells apart two processes that had the
// same pid: a restarted container runs bench as pid 1 again.
type Holder struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

func (h Holder) String() string {
	return fmt.Sprintf("pid %d on %s since %s", h.PID, h.Host, h.Since.Format(time.DateTime))
}

// self is this process.
var self = Holder{PID: os.Getpid(), Host: hostname(), Since: time.Now()}

// seq makes this process's file names unique.
var seq atomic.Int64

func hostname() string {
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "unknown-host"
}

// alive reports whether h may still be running. Only a process of this host
// can be checked: it is gone when its pid is (ESRCH; EPERM means it runs as
// another user), or when the pid is ours but the start time is not.
func alive(h Holder) bool {
	switch {
	case h.Host != self.Host:
		return true
	case h.PID <= 0:
		return false
	case h.PID == self.PID:
		return h.Since.Equal(self.Since)
	}
	return !errors.Is(syscall.Kill(h.PID, 0), syscall.ESRCH)
}

// Settings are what a run's images depend on and are known before the model
// loads (bench.json adds the model's hash once it has): the processes that
// share a run folder must agree on them.
type Settings struct {
	PromptsSHA256 string       `json:"prompts_sha256"`
	Weights       string       `json:"weights"`
	Config        rfnet.Config `json:"config"`
}

func (s Settings) fingerprint() string {
	raw, _ := json.Marshal(s)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// differences lists what differs between a (here) and b (there).
func differences(a, b Settings) []string {
	var out []string
	if a.PromptsSHA256 != b.PromptsSHA256 {
		out = append(out, "the prompt set")
	}
	if a.Weights != b.Weights {
		out = append(out, fmt.Sprintf("weights %q here, %q there", a.Weights, b.Weights))
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
	sort.Strings(keys)
	for _, k := range keys {
		if !bytes.Equal(ca[k], cb[k]) {
			out = append(out, fmt.Sprintf("%s %s here, %s there", k, ca[k], cb[k]))
		}
	}
	return out
}

// lockFile is the content of a file in locks/.
type lockFile struct {
	Holder
	Fingerprint string   `json:"fingerprint"`
	Settings    Settings `json:"settings"`
}

// Lock registers this process in the run folder out for the settings s and
// returns the function that unregisters it. While a live process with other
// settings is registered it fails, naming that process and what differs.
// It removes (and logs) the registrations of processes that are gone.
func Lock(out string, s Settings, log io.Writer) (release func(), err error) {
	dir := filepath.Join(out, "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("rfbench: %w", err)
	}
	me := lockFile{Holder: self, Fingerprint: s.fingerprint(), Settings: s}
	// A name of our own needs no exclusive create (a file of that name is left
	// by an earlier process with our pid). Writing it before reading the others
	// means two processes starting together see each other: if they differ,
	// both refuse, and neither runs mixed.
	path := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.json", self.Host, self.PID, seq.Add(1)))
	raw, _ := json.MarshalIndent(me, "", "  ")
	if err := atomicfile.WriteBytes(path, raw); err != nil {
		return nil, fmt.Errorf("rfbench: %w", err)
	}
	release = func() { os.Remove(path) }
	entries, err := os.ReadDir(dir)
	if err != nil {
		release()
		return nil, fmt.Errorf("rfbench: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if p == path || strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var other lockFile
		if err := readJSON(p, &other); errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile
		} else if err != nil {
			release()
			return nil, fmt.Errorf("rfbench: %s: %v (delete it if no bench is running in %s)", p, err, out)
		}
		switch {
		case !alive(other.Holder):
			fmt.Fprintf(orDiscard(log), "rfnet-native: bench: removing the lock of %s, which is gone: %s\n", other.Holder, p)
			os.Remove(p)
		case other.Fingerprint != me.Fingerprint:
			release()
			diff := strings.Join(differences(s, other.Settings), "; ")
			if diff == "" {
				diff = "fingerprint " + me.Fingerprint + " here, " + other.Fingerprint + " there"
			}
			msg := fmt.Sprintf("rfbench: %s is in use by %s with other settings (%s): wait for it to finish, or use another --out", out, other.Holder, diff)
			if other.Host != self.Host {
				msg += fmt.Sprintf("; if %s is gone, delete %s", other.Host, p)
			}
			return nil, errors.New(msg)
		default:
			fmt.Fprintf(orDiscard(log), "rfnet-native: bench: sharing %s with %s (same settings): each item is claimed by one process\n", out, other.Holder)
		}
	}
	return release, nil
}

// claim takes the item whose claim file is path for this process and returns
// the function that gives it up. When a live process has the item, it
// returns that process instead. A stale claim is taken over (and logged).
func claim(path string, log io.Writer) (release func(), holder *Holder, err error) {
	for try := 0; try < 3; try++ {
		err := createExclusive(path, self)
		if err == nil {
			return func() { os.Remove(path) }, nil, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, nil, err
		}
		var h Holder
		if err := readJSON(path, &h); err == nil && alive(h) {
			return nil, &h, nil
		} else if errors.Is(err, fs.ErrNotExist) {
			continue // given up meanwhile
		}
		takeOver(path, log)
	}
	return nil, nil, fmt.Errorf("rfbench: %s: could not claim it", path)
}

// takeOver removes a claim found stale. It renames the file away first and
// checks the file it then holds, so that two processes taking over one stale
// claim cannot remove each other's new claim (one that finds a live claim in
// its hands puts it back).
func takeOver(path string, log io.Writer) {
	tmp := fmt.Sprintf("%s.stale-%d-%d", path, self.PID, seq.Add(1))
	if os.Rename(path, tmp) != nil {
		return // gone already
	}
	defer os.Remove(tmp)
	var h Holder
	if err := readJSON(tmp, &h); err != nil {
		fmt.Fprintf(orDiscard(log), "rfnet-native: bench: taking over the unreadable claim %s (%v)\n", path, err)
	} else if alive(h) {
		os.Link(tmp, path)
	} else {
		fmt.Fprintf(orDiscard(log), "rfnet-native: bench: taking over the claim of %s, which is gone: %s\n", h, path)
	}
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

func readJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
