//go:build cuda

package cuda_test

import (
	"testing"

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
