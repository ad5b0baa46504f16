// Package regular refuses input paths that are neither regular files nor
// folders before they are opened: reading a named pipe (FIFO) blocks until
// something writes to it, so `--weights /tmp/fifo` used to hang forever.
package regular

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// Check returns an error naming path when it exists and is neither a regular
// file nor a folder (a missing file is left to the caller's own open).
func Check(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%s is a %s, not a regular file", path, Kind(fi.Mode()))
}

// Open opens path for reading when it is a regular file (or a link to one).
// It asks Check first, then opens without blocking (a FIFO put at the name in
// between would otherwise block the open) and checks the opened file again.
// A missing file is an error wrapping fs.ErrNotExist; every error names path.
func Open(path string) (*os.File, error) {
	if err := Check(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case fi.IsDir():
		err = fmt.Errorf("%s is a folder, not a file", path)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("%s is a %s, not a regular file", path, Kind(fi.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile is os.ReadFile through Open.
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// ReadFileAtMost is ReadFile for a file that may hold at most limit bytes:
// a larger one is refused without being read, so a huge file where a small
// one belongs cannot exhaust memory.
func ReadFileAtMost(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.Size() > limit {
		return nil, tooBig(path, fi.Size(), limit)
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

// Kind names a non-regular file's type for messages.
func Kind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
