// Package atomicfile writes files so that a reader (or a crash) never sees a
// half-written one: the data goes to a temporary file in the same folder, which
// is synced and then renamed over the destination.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/rfnet/rfnet-native/internal/regular"
)

// Write creates path with the bytes that fill writes. On any error the
// destination is left as it was.
func Write(path string, fill func(w io.Writer) error) error {
	p, err := Prepare(path, fill)
	if err != nil {
		return err
	}
	return p.Commit()
}

// WriteBytes is Write for data already in memory.
func WriteBytes(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Pending is a file written and synced under a temporary name beside its
// destination, not yet in place: the files of one result are all prepared
// first (where a full disk or a failed encoder shows up), then committed by
// renames, in an order the caller chooses, so that the last one to land marks
// the result complete.
type Pending struct {
	tmp, path string
}

// Prepare writes the bytes that fill writes to a temporary file next to path.
// On error nothing is left behind.
func Prepare(path string, fill func(w io.Writer) error) (p *Pending, err error) {
	path, err = Destination(path)
	if err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &Pending{tmp: tmp.Name(), path: path}, nil
}

// Destination is the file a write to path replaces. A rename replaces
// whatever has the name, so a symbolic link is followed (the link stays and
// its target gets the new contents), and a name that is not a regular file
// is refused: `--out /dev/null` used to turn /dev/null into a file.
func Destination(path string) (string, error) {
	for hops := 0; ; hops++ {
		fi, err := os.Lstat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			return path, nil // a new file (a missing folder shows when it is created)
		case err != nil:
			return "", fmt.Errorf("write %s: %w", path, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			if hops == 40 {
				return "", fmt.Errorf("write %s: too many levels of symbolic links", path)
			}
			target, err := os.Readlink(path)
			if err != nil {
				return "", fmt.Errorf("write %s: %w", path, err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(path), target)
			}
			path = target
		case fi.IsDir():
			return "", fmt.Errorf("write %s: it is a folder", path)
		case !fi.Mode().IsRegular():
			return "", fmt.Errorf("write %s: it is a %s, which a file would replace: write elsewhere", path, regular.Kind(fi.Mode()))
		default:
			return path, nil
		}
	}
}

// PrepareBytes is Prepare for data already in memory.
func PrepareBytes(path string, data []byte) (*Pending, error) {
	return Prepare(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Path is the destination.
func (p *Pending) Path() string { return p.path }

// Commit renames the file into place.
func (p *Pending) Commit() error {
	if err := os.Rename(p.tmp, p.path); err != nil {
		return fmt.Errorf("write %s: %w", p.path, err)
	}
	return nil
}

// Abort removes the temporary file; the destination is left as it was.
func (p *Pending) Abort() { os.Remove(p.tmp) }

// CommitAll commits files in order. When one fails, it and the ones after it
// are aborted; those before it stay in place (a rename cannot be taken back),
// so callers put the file that marks completion last.
func CommitAll(files []*Pending) error {
	for i, p := range files {
		if err := p.Commit(); err != nil {
			AbortAll(files[i:])
			return err
		}
	}
	return nil
}

// AbortAll aborts every file.
func AbortAll(files []*Pending) {
	for _, p := range files {
		p.Abort()
	}
}
