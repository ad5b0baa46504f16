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
