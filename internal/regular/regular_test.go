package regular

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheckRefusesFIFOWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "weights.safetensors")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no mkfifo here:", err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadFile(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") || !strings.Contains(err.Error(), fifo) {
			t.Fatalf("error %v, want one naming the FIFO", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reading a FIFO blocked")
	}
	file := filepath.Join(dir, "plain")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, p := range []string{file, dir, filepath.Join(dir, "missing")} {
		if err := Check(p); err != nil {
			t.Errorf("Check(%s) = %v", p, err)
		}
	}
}

// Open refuses a folder; ReadFileAtMost refuses a file past its limit unread.
func TestOpenAndReadAtMost(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Fatalf("Open(folder) = %v", err)
	}
	p := filepath.Join(dir, "x.json")
	os.WriteFile(p, []byte("12345"), 0o644)
	if data, err := ReadFileAtMost(p, 5); err != nil || string(data) != "12345" {
		t.Fatalf("at the limit: %q, %v", data, err)
	}
	if _, err := ReadFileAtMost(p, 4); err == nil || !strings.Contains(err.Error(), "5 bytes, more than the 4") {
		t.Fatalf("past the limit: %v", err)
	}
}
