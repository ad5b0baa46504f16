//go:build cuda

package cuda_test

import (
	"os"
	"testing"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// device opens the GPU for a test. Without one the test is skipped, unless
// RFNET_REQUIRE_GPU is set (scripts/gpu-check.sh sets it: there a missing GPU
// is a failure). Buffers are NaN-poisoned unless RFNET_CUDA_POISON=0 (the
// benchmarks turn it off); RFNET_CUDA_TF32=1 lets float32 GEMMs use TF32.
func device(t testing.TB) tensor.Backend {
	t.Helper()
	b, err := cuda.New(cuda.Options{Poison: os.Getenv("RFNET_CUDA_POISON") != "0", TF32: os.Getenv("RFNET_CUDA_TF32") == "1"})
	if err != nil {
		if os.Getenv("RFNET_REQUIRE_GPU") != "" {
			t.Fatal(err)
		}
		t.Skipf("no GPU here: %v", err)
	}
	return b
}

// computeDTypes are the dtypes the GPU computes in.
var computeDTypes = []tensor.DType{tensor.Float32, tensor.Float16, tensor.BFloat16}

// tol is the parity tolerance of dtype d: backendtest.ParityTol, with
// backendtest.TF32Tol for float32 when RFNET_CUDA_TF32=1.
func tol(d tensor.DType) float64 {
	if d == tensor.Float32 && os.Getenv("RFNET_CUDA_TF32") == "1" {
		return backendtest.TF32Tol
	}
	return backendtest.ParityTol[d]
}

// syncOK fails t with the first error the device hit.
func syncOK(t testing.TB, b tensor.Backend) {
	t.Helper()
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}
