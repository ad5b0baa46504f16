//go:build cuda

package cuda_test

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// Float attention over many scores goes through matmul, softmax, matmul in
// chunks of the batch (here 2, 2 and 1 entries); it agrees with the CPU's
// float64 attention, and with the fused CUDA-core kernel it replaces.
func TestAttentionExplicitPath(t *testing.T) {
	g := device(t)
	ref := cpu.New()
	const batch, n, m, d = 5, 33, 47, 40
	scale := 1 / math.Sqrt(d)
	q := backendtest.Randn(g, tensor.Float32, 1, batch, n, d)
	k := backendtest.Randn(g, tensor.Float32, 2, batch, m, d)
	v := backendtest.Randn(g, tensor.Float32, 3, batch, m, d)
	onCPU := func(x *tensor.Tensor) *tensor.Tensor {
		return tensor.FromFloat64(ref, tensor.Float64, x.Shape(), x.Float64s())
	}
	want := tensor.Attention(onCPU(q), onCPU(k), onCPU(v), scale).Float64s()
	fused := tensor.Attention(q, k, v, scale).Float64s() // n·m is far below the default threshold
	restore := cuda.WithExplicitAttention(1, 2*n*m*4)
	explicit := tensor.Attention(q, k, v, scale)
	restore()
	syncOK(t, g)
	tol := backendtest.ParityTol[tensor.Float32]
	backendtest.AssertCloseValues(t, explicit.Float64s(), want, tol)
	backendtest.AssertCloseValues(t, fused, want, tol)
}
