//go:build cuda

package cuda_test

import (
	"fmt"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// The built-in GEMM kernels (used when no libcublas loads) against the CPU,
// whichever GEMM the backend picked: tile edges, transposes, a shared operand.
func TestKernelGemmMatchesCPU(t *testing.T) {
	g, c := device(t), cpu.New()
	for _, d := range computeDTypes {
		for _, p := range []tensor.MatMulParams{
			{Batch: 1, M: 64, N: 64, K: 16},
			{Batch: 3, M: 130, N: 150, K: 70, BatchStrideA: 130 * 70, BatchStrideB: 70 * 150},
			{Batch: 2, M: 77, N: 33, K: 129, TransA: true, BatchStrideA: 77 * 129, BatchStrideB: 129 * 33},
			{Batch: 2, M: 5, N: 300, K: 17, TransB: true, BatchStrideA: 5 * 17},
			{Batch: 4, M: 65, N: 1, K: 200, TransA: true, TransB: true, BatchStrideB: 200},
		} {
			t.Run(fmt.Sprintf("%s/%+v", d, p), func(t *testing.T) {
				na, nb := p.M*p.K, p.K*p.N // a batch stride of 0 shares one matrix
				if p.BatchStrideA > 0 {
					na = p.BatchStrideA * p.Batch
				}
				if p.BatchStrideB > 0 {
					nb = p.BatchStrideB * p.Batch
				}
				ga, gb := g.FromFloat64(d, backendtest.RandnValues(1, na)), g.FromFloat64(d, backendtest.RandnValues(2, nb))
				out := cuda.KernelGemm(g, ga, gb, p)
				syncOK(t, g)
				// The CPU multiplies the values as stored on the GPU, in float64.
				want := c.Float64s(c.MatMul(c.FromFloat64(tensor.Float64, g.Float64s(ga)), c.FromFloat64(tensor.Float64, g.Float64s(gb)), p))
				backendtest.AssertCloseValues(t, g.Float64s(out), want, backendtest.ParityTol[d]) // the kernels never use TF32
			})
		}
	}
}
