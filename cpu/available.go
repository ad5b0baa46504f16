package cpu

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// AvailableMemory is MemAvailable of /proc/meminfo: what the kernel says can
// be allocated without swapping. Elsewhere than Linux it is an error, and
// callers skip their memory check.
func (*Backend) AvailableMemory() (int64, error) {
	return memAvailable("/proc/meminfo")
}

func memAvailable(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("cpu: available memory: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu: %s: MemAvailable %q: %w", path, rest, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("cpu: %s has no MemAvailable line", path)
}
