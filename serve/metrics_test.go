package serve

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// memoryBackend is a backend that reports device memory, as cuda does.
type memoryBackend struct{ tensor.Backend }

func (memoryBackend) MemoryStats() (inUse, peak int64) { return 5 << 20, 9 << 20 }

// A backend with MemoryStats gets rfnet_device_memory_bytes; one without
// (the CPU) gets none.
func TestDeviceMemoryMetric(t *testing.T) {
	want := `# HELP rfnet_device_memory_bytes Device memory the backend holds (in_use) and its peak.
# TYPE rfnet_device_memory_bytes gauge
rfnet_device_memory_bytes{kind="in_use"} 5.24288e+06
rfnet_device_memory_bytes{kind="peak"} 9.437184e+06
`
	if err := testutil.GatherAndCompare(newMetrics(memoryBackend{cpu.New()}).reg, strings.NewReader(want), "rfnet_device_memory_bytes"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(newMetrics(cpu.New()).reg, "rfnet_device_memory_bytes"); err != nil || n != 0 {
		t.Errorf("the CPU backend: %d device memory series, %v", n, err)
	}
}
