package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
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
