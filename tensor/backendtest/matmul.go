package backendtest

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func testMatMulForward(t *testing.T, f forward) {
	for _, c := range []struct {
		m, n, k        int
		transA, transB bool
	}{{3, 5, 4, false, false}, {17, 33, 65, true, false}, {64, 40, 80, false, true}, {130, 70, 90, true, true}} {
		av, a := f.host(3, c.m*c.k)
		bv, bb := f.host(4, c.k*c.n)
		ash, bsh := []int{c.m, c.k}, []int{c.k, c.n}
		if c.transA {
			ash = []int{c.k, c.m}
		}
		if c.transB {
			bsh = []int{c.n, c.k}
		}
		got := tensor.MatMulT(a.Reshape(ash...), bb.Reshape(bsh...), c.transA, c.transB)
		f.check(t, got, tensor.Shape{c.m, c.n}, refMatMul(av, bv, c.m, c.n, c.k, c.transA, c.transB))
	}
	// batched, with the second operand shared across the batch
	av, a := f.host(5, 3, 4, 6)
	bv, bb := f.host(6, 6, 2)
	want := make([]float64, 0, 24)
	for i := 0; i < 3; i++ {
		want = append(want, refMatMul(av[i*24:(i+1)*24], bv, 4, 2, 6, false, false)...)
	}
	f.check(t, a.MatMul(bb), tensor.Shape{3, 4, 2}, want)
}

// LinearAdd is x·wᵀ + bias + residual, with and without a bias, at sizes
// on and off the GEMM kernels' 64-wide tiles, x with a leading batch axis.
func testLinearResidualForward(t *testing.T, f forward) {
	for _, c := range []struct {
		b, rows, in, out int
		bias             bool
	}{{1, 3, 5, 4, true}, {2, 70, 33, 130, true}, {2, 64, 40, 64, false}} {
		xv, x := f.host(11, c.b, c.rows, c.in)
		wv, w := f.host(12, c.out, c.in)
		bv, bias := f.host(13, c.out)
		rv, res := f.host(14, c.b, c.rows, c.out)
		if !c.bias {
			bias = nil
		}
		want := refMatMul(xv, wv, c.b*c.rows, c.out, c.in, false, true)
		for i := range want {
			want[i] += rv[i]
			if c.bias {
				want[i] += bv[i%c.out]
			}
		}
		f.check(t, x.LinearAdd(w, bias, res), res.Shape(), want)
	}
}

// BenchmarkMatMul times products in dtype d at Stable Diffusion shapes and reports GFLOP/s.
func BenchmarkMatMul(b *testing.B, be tensor.Backend, d tensor.DType) {
	for _, c := range []struct {
		name    string
		m, n, k int
	}{
		{"square_1024", 1024, 1024, 1024},
		{"attn_proj_64x64_320", 4096, 320, 320},    // q/k/v/out projection, 64×64 latent, 320 channels
		{"ff_in_16x16_1280", 256, 10240, 1280},     // GEGLU projection at 16×16, 1280 channels
		{"cross_kv_77_1024_to_640", 77, 640, 1024}, // text keys/values, SD2 width
	} {
		b.Run(c.name, func(b *testing.B) {
			x := Randn(be, d, 1, c.m, c.k)
			w := Randn(be, d, 2, c.n, c.k)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tensor.MatMulT(x, w, false, true)
			}
			sync(b, be)
			reportFLOPs(b, 2*float64(c.m)*float64(c.n)*float64(c.k))
		})
	}
	b.Run("attn_scores_8heads_1024x1024x40", func(b *testing.B) { // self-attention QKᵀ at 32×32, SD1 heads
		q := Randn(be, d, 3, 8, 1024, 40)
		k := Randn(be, d, 4, 8, 1024, 40)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			tensor.MatMulT(q, k, false, true)
		}
		sync(b, be)
		reportFLOPs(b, 2*8*1024*1024*40)
	})
}

func refMatMul(a, b []float64, m, n, k int, transA, transB bool) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for l := 0; l < k; l++ {
				av := a[i*k+l]
				if transA {
					av = a[l*m+i]
				}
				bv := b[l*n+j]
				if transB {
					bv = b[j*k+l]
				}
				s += av * bv
			}
			out[i*n+j] = s
		}
	}
	return out
}
