package rfbench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/llm"
)

// Every file bench, eval, report and merge read from a run folder is opened
// here. A run folder is shared, copied and merged, so anything may sit at a
// name: a named pipe blocks its open until something writes to it (and a
// process blocked there does not see SIGTERM), a device such as /dev/zero
// linked in never ends, and a huge file read whole exhausts memory. So a
// path is first put to regular.Check, which refuses pipes, sockets and
// devices without opening them; it is then opened without blocking (in case
// one was put there in between) and checked again, as opened.

// MaxJSON caps the JSON files read from a run folder: sidecars, bench.json,
// plans, judge results, locks and claims. The largest that bench writes, a
// sidecar with an RFNet plan, is a few kilobytes; one past 16 MiB is broken,
// and reading it whole could exhaust memory.
const MaxJSON = 16 << 20

// openRegular opens path for reading when it is a regular file (a symbolic
// link to one included) and returns it with its size. A missing file is an
// error wrapping fs.ErrNotExist; every error names path.
func openRegular(path string) (*os.File, int64, error) {
	if err := regular.Check(path); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case fi.IsDir():
		err = fmt.Errorf("%s is a folder, not a file", path)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("%s is a %s, not a regular file", path, regular.Kind(fi.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// readFile reads the regular file at path whole, refusing one of more than
// limit bytes without reading it.
func readFile(path string, limit int64) ([]byte, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, tooBig(path, size, limit)
	}
	// The size may grow between the stat and the read.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = tooBig(path, int64(len(data)), limit)
	}
	if err != nil {
		return nil, err
	}
	return data, nil
}

func tooBig(path string, size, limit int64) error {
	return fmt.Errorf("%s: %d bytes, more than the %d such a file may have: it is broken", path, size, limit)
}

// readJSON decodes the JSON file at path (at most MaxJSON bytes) into v.
func readJSON(path string, v any) error {
	raw, err := readFile(path, MaxJSON)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// hashFile is the size and hex SHA-256 of the regular file at path, read as
// a stream.
func hashFile(path string) (int64, string, error) {
	f, _, err := openRegular(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// readPlan is llm.ReadPlan for a plan in a run folder, which refuses one
// past MaxJSON unread.
func readPlan(path string) (*llm.Plan, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	f.Close()
	if size > MaxJSON {
		return nil, tooBig(path, size, MaxJSON)
	}
	return llm.ReadPlan(path)
}
