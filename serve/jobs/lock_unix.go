//go:build unix

package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockStore takes an exclusive lock on dir/lock, so that a second queue (a second
// server given the same --data) is refused instead of marking the first one's running
// jobs interrupted. The kernel drops the lock when the process dies, kill -9 included.
func lockStore(dir string) (release func(), err error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jobs: store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("jobs: store %s is in use by another server (it holds %s)", dir, path)
		}
		return nil, fmt.Errorf("jobs: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
