package cpu

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemAvailable(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "meminfo")
	os.WriteFile(good, []byte("MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\n"), 0o644)
	if n, err := memAvailable(good); err != nil || n != 20000000<<10 {
		t.Fatalf("memAvailable = %d, %v", n, err)
	}
	bad := filepath.Join(dir, "old")
	os.WriteFile(bad, []byte("MemTotal: 1 kB\n"), 0o644)
	if _, err := memAvailable(bad); err == nil {
		t.Fatal("a meminfo without MemAvailable must be an error")
	}
	if _, err := (&Backend{}).AvailableMemory(); err != nil && runtimeIsLinux() {
		t.Fatal(err)
	}
}

func runtimeIsLinux() bool {
	_, err := os.Stat("/proc/meminfo")
	return err == nil
}
