//go:build cuda

package cuda_test

import (
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

// device opens the GPU for a test (see fixtures.GPU: skipped without one).
func device(t testing.TB) tensor.Backend { return fixtures.GPU(t) }

// computeDTypes are the dtypes the GPU computes in.
var computeDTypes = []tensor.DType{tensor.Float32, tensor.Float16, tensor.BFloat16}

// syncOK fails t with the first error the device hit.
func syncOK(t testing.TB, b tensor.Backend) {
	t.Helper()
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// AvailableMemory counts the allocator's cached blocks as available: a block
// handed back is free to reuse, though the driver still holds it.
func TestAvailableMemoryCountsTheCache(t *testing.T) {
	b := device(t)
	r, ok := b.(tensor.MemoryReporter)
	if !ok {
		t.Fatal("the CUDA backend does not report its memory")
	}
	before, err := r.AvailableMemory()
	if err != nil || before <= 0 {
		t.Fatalf("available %d, %v", before, err)
	}
	const n = 64 << 20 // 256 MiB of float32
	x := b.Alloc(tensor.Float32, n)
	syncOK(t, b)
	during, _ := r.AvailableMemory()
	b.Free(x)
	after, _ := r.AvailableMemory()
	if during > before-4*n+(1<<20) || after < during+4*n {
		t.Fatalf("available %d before, %d with 256 MiB allocated, %d after freeing it", before, during, after)
	}
}

// New opens the GPU once per process: a later call asking for the device and
// TF32 setting it has gets the same backend, one asking for others an error.
func TestNewOncePerProcess(t *testing.T) {
	g := device(t)
	if again, err := cuda.New(cuda.Options{TF32: fixtures.TF32()}); err != nil || again != g {
		t.Fatalf("New with the same settings: %v, %v; want the open backend", again, err)
	}
	for _, o := range []cuda.Options{{Ordinal: 1, TF32: fixtures.TF32()}, {TF32: !fixtures.TF32()}} {
		if _, err := cuda.New(o); err == nil || !strings.Contains(err.Error(), "once per process") {
			t.Errorf("New(%+v) after the device opened: %v, want an error", o, err)
		}
	}
}
