//go:build cuda

package cuda_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// RFNET_CUDA_POISON=0 go test -tags cuda -run '^$' -bench . ./cuda
// (poisoning would time a memset with every allocation).

func BenchmarkMatMul(b *testing.B) {
	g := device(b)
	for _, d := range computeDTypes {
		b.Run(d.String(), func(b *testing.B) { backendtest.BenchmarkMatMul(b, g, d) })
	}
}

func BenchmarkConv2d(b *testing.B) {
	g := device(b)
	for _, d := range computeDTypes {
		b.Run(d.String(), func(b *testing.B) { backendtest.BenchmarkConv2d(b, g, d) })
	}
}

// BenchmarkAttention times the fused kernel at SD's self-attention shapes
// (batch 2 × heads, 64² and 32² latents) and reports TFLOP/s of the two products.
func BenchmarkAttention(b *testing.B) {
	g := device(b)
	for _, d := range []tensor.DType{tensor.Float32, tensor.Float16} {
		for _, c := range []struct{ batch, n, dim int }{{16, 4096, 40}, {16, 1024, 80}, {10, 4096, 64}} {
			b.Run(fmt.Sprintf("%s/%dx%dx%d", d, c.batch, c.n, c.dim), func(b *testing.B) {
				q := backendtest.Randn(g, d, 1, c.batch, c.n, c.dim)
				k := backendtest.Randn(g, d, 2, c.batch, c.n, c.dim)
				v := backendtest.Randn(g, d, 3, c.batch, c.n, c.dim)
				b.ResetTimer()
				for range b.N {
					tensor.Attention(q, k, v, 1/math.Sqrt(float64(c.dim)))
				}
				syncOK(b, g)
				flops := 4 * float64(c.batch) * float64(c.n) * float64(c.n) * float64(c.dim)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
			})
		}
	}
}
