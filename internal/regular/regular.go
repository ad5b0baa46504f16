// Package regular refuses input paths that are neither regular files nor
// folders before they are opened: reading a named pipe (FIFO) blocks until
// something writes to it, so `--weights /tmp/fifo` used to hang forever.
package regular

import (
	"fmt"
	"os"
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

// ReadFile is os.ReadFile for a path that Check accepts.
func ReadFile(path string) ([]byte, error) {
	if err := Check(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// Open is os.Open for a path that Check accepts.
func Open(path string) (*os.File, error) {
	if err := Check(path); err != nil {
		return nil, err
	}
	return os.Open(path)
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
