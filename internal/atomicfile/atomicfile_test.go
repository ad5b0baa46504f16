package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteKeepsOldFileOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.bin")
	if err := WriteBytes(path, []byte("first")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Fatalf("file holds %q after a failed write, want the old contents", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary file left behind: %v", entries)
	}
}

// The files of one result land in order; when one cannot, neither it nor
// those after it land, and no temporary file is left.
func TestCommitAllStopsAtTheFirstFailure(t *testing.T) {
	dir := t.TempDir()
	var files []*Pending
	for _, name := range []string{"a", "b", "c"} {
		p, err := PrepareBytes(filepath.Join(dir, name), []byte(name))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	os.MkdirAll(filepath.Join(dir, "b", "inside"), 0o755) // b cannot be renamed over a folder
	if err := CommitAll(files); err == nil {
		t.Fatal("committed over a folder")
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "a" || names[1] != "b" {
		t.Fatalf("left %v, want a (committed) and the folder b", names)
	}
	if _, err := os.Stat(filepath.Join(dir, "c")); err == nil {
		t.Fatal("c landed after b failed")
	}
}

// A write goes through a symbolic link to its target and refuses to replace a
// device or a FIFO with a file.
func TestDestination(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.png")
	link := filepath.Join(dir, "link.png")
	os.Symlink("target.png", link)
	if err := WriteBytes(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	if got, _ := os.ReadFile(target); string(got) != "new" {
		t.Fatalf("the target holds %q", got)
	}
	loop := filepath.Join(dir, "loop")
	os.Symlink("loop", loop)
	if err := WriteBytes(loop, nil); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Fatalf("loop: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if syscall.Mkfifo(fifo, 0o644) == nil {
		if err := WriteBytes(fifo, nil); err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("fifo: %v", err)
		}
		if fi, _ := os.Lstat(fifo); fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatal("the FIFO was replaced")
		}
	}
	if err := WriteBytes(dir, nil); err == nil || !strings.Contains(err.Error(), "folder") {
		t.Fatalf("folder: %v", err)
	}
}
