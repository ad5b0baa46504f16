package rfbench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/llm"
)

// Every file bench, eval, report and merge read from a run folder is opened
// through internal/regular. A run folder is shared, copied and merged, so
// anything may sit at a name: a named pipe blocks its open until something
// writes to it (and a process blocked there does not see SIGTERM), a device
// such as /dev/zero linked in never ends, and a huge file read whole
// exhausts memory; regular.Open refuses the first two without blocking, and
// the JSON files are read with regular.ReadFileAtMost(path, MaxJSON).

// MaxJSON caps the JSON files read from a run folder: sidecars, bench.json,
// plans, judge results, locks and claims. The largest that bench writes, a
// sidecar with an RFNet plan, is a few kilobytes; one past 16 MiB is broken,
// and reading it whole could exhaust memory.
const MaxJSON = 16 << 20

// readJSON decodes the JSON file at path (at most MaxJSON bytes) into v.
func readJSON(path string, v any) error {
	raw, err := regular.ReadFileAtMost(path, MaxJSON)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// hashFile is the size and hex SHA-256 of the regular file at path, read as
// a stream.
func hashFile(path string) (int64, string, error) {
	f, err := regular.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	return hashStream(f)
}

// hashStream is the number of bytes r holds and their hex SHA-256.
func hashStream(r io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// readPlan is llm.ReadPlan for a plan in a run folder, which refuses one
// past MaxJSON unread.
func readPlan(path string) (*llm.Plan, error) {
	f, err := regular.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxJSON {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a plan may have: it is broken", path, fi.Size(), MaxJSON)
	}
	return llm.ReadPlan(path)
}
