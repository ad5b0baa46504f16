package answercache

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type entry struct {
	Caption, Response string
}

// Keys are the SHA-256 of the parts joined by NUL: the names the planner's
// and the judges' caches on disk already have.
func TestKey(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	for _, c := range []struct {
		parts []string
		text  string
	}{
		{[]string{"a"}, "a"},
		{[]string{"https://api.openai.com/v1", "gpt-4o", "v1", "a cat"}, "https://api.openai.com/v1\x00gpt-4o\x00v1\x00a cat"},
		{[]string{"gpt4score", "x", ""}, "gpt4score\x00x\x00"}, // a trailing empty part ends the text with NUL
	} {
		if got := Key(c.parts...); got != sum(c.text) {
			t.Errorf("Key(%q) = %s, want the SHA-256 of %q", c.parts, got, c.text)
		}
	}
	if Key("ab", "c") == Key("a", "bc") {
		t.Error("parts that concatenate alike share a key")
	}
}

func TestStoreThenLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	c := New(dir)
	key := Key("a cat")
	var e entry
	if c.Load(key, &e) {
		t.Fatal("an empty cache has an entry")
	}
	if err := c.Store(key, entry{"a cat", "{}"}); err != nil {
		t.Fatal(err)
	}
	if !c.Load(key, &e) || e != (entry{"a cat", "{}"}) {
		t.Fatalf("loaded %+v", e)
	}
	if _, err := os.Stat(filepath.Join(dir, key+".json")); err != nil {
		t.Fatalf("the entry is not at <dir>/<key>.json: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

// Entries written before this package, compact or indented, are read.
func TestLoadReadsExistingEntries(t *testing.T) {
	c := New(t.TempDir())
	for _, raw := range []string{`{"Caption":"a cat","Response":"{}"}`, "{\n  \"Caption\": \"a cat\",\n  \"Response\": \"{}\"\n}"} {
		key := Key(raw)
		os.WriteFile(c.path(key), []byte(raw), 0o644)
		var e entry
		if !c.Load(key, &e) || e.Caption != "a cat" {
			t.Errorf("%q: loaded %+v", raw, e)
		}
	}
}

// What is no entry of the asked shape is a miss, never an error or a hang.
func TestBrokenEntriesAreMisses(t *testing.T) {
	dir := t.TempDir()
	c := New(dir)
	for name, write := range map[string]func(path string) error{
		"truncated":   func(p string) error { return os.WriteFile(p, []byte(`{"Caption": "a c`), 0o644) },
		"empty":       func(p string) error { return os.WriteFile(p, nil, 0o644) },
		"not JSON":    func(p string) error { return os.WriteFile(p, []byte("<html>"), 0o644) },
		"wrong shape": func(p string) error { return os.WriteFile(p, []byte(`{"Caption": 7}`), 0o644) },
		"too large": func(p string) error {
			return os.WriteFile(p, []byte(`{"Caption": "`+strings.Repeat("x", MaxEntry)+`"}`), 0o644)
		},
		"a folder": func(p string) error { return os.Mkdir(p, 0o755) },
		"a FIFO":   func(p string) error { return syscall.Mkfifo(p, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			key := Key(name)
			if err := write(c.path(key)); err != nil {
				t.Fatal(err)
			}
			done := make(chan bool, 1)
			go func() {
				var e entry
				done <- c.Load(key, &e)
			}()
			select {
			case hit := <-done:
				if hit {
					t.Fatal("a hit")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Load blocked")
			}
			// Storing over a broken regular entry replaces it.
			if name == "truncated" {
				if err := c.Store(key, entry{"a cat", "{}"}); err != nil {
					t.Fatal(err)
				}
				var e entry
				if !c.Load(key, &e) || e.Caption != "a cat" {
					t.Fatalf("after Store: %+v", e)
				}
			}
		})
	}
}

func TestNoFolderKeepsNothing(t *testing.T) {
	var c Cache
	if err := c.Store(Key("a"), entry{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	var e entry
	if c.Load(Key("a"), &e) {
		t.Fatal("the zero Cache has an entry")
	}
	entries, _ := os.ReadDir(".")
	for _, f := range entries {
		if strings.HasSuffix(f.Name(), ".json") {
			t.Fatalf("the zero Cache wrote %s into the working folder", f.Name())
		}
	}
}

func TestStoreErrorsNameThePath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a file")
	os.WriteFile(file, nil, 0o644)
	if err := New(file).Store(Key("a"), entry{}); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("a file as the folder: %v", err)
	}
	if err := New(dir).Store(Key("a"), math.NaN()); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, Key("a")+".json")) {
		t.Errorf("an unencodable answer: %v", err)
	}
}
