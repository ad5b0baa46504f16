package backendtest

import (
	"fmt"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

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

// BenchmarkConv2d times convolutions in dtype d at UNet and VAE shapes and reports GFLOP/s.
func BenchmarkConv2d(b *testing.B, be tensor.Backend, d tensor.DType) {
	for _, c := range []struct{ n, c, h, o, k, s, p int }{
		{1, 320, 64, 320, 3, 1, 1},   // UNet level 0 at 512²
		{1, 640, 32, 640, 3, 1, 1},   // UNet level 1
		{1, 1280, 16, 1280, 3, 1, 1}, // UNet level 2
		{1, 320, 64, 320, 3, 2, 1},   // downsample
		{1, 640, 32, 1280, 1, 1, 0},  // 1×1 shortcut
		{1, 128, 256, 128, 3, 1, 1},  // VAE decoder at 256²
	} {
		b.Run(fmt.Sprintf("%dx%dx%d_k%d_s%d_to%d", c.n, c.c, c.h, c.k, c.s, c.o), func(b *testing.B) {
			x := Randn(be, d, 1, c.n, c.c, c.h, c.h)
			w := Randn(be, d, 2, c.o, c.c, c.k, c.k)
			bias := Randn(be, d, 3, c.o)
			p := tensor.Conv2dParams{N: c.n, C: c.c, H: c.h, W: c.h, O: c.o, KH: c.k, KW: c.k, Stride: c.s, Pad: c.p}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				x.Conv2d(w, bias, c.s, c.p)
			}
			sync(b, be)
			reportFLOPs(b, float64(p.FLOPs()))
		})
	}
	b.Run("backward_input_1x320x64_k3", func(b *testing.B) {
		x := Randn(be, d, 1, 1, 320, 64, 64)
		w := Randn(be, d, 2, 320, 320, 3, 3)
		p := tensor.Conv2dParams{N: 1, C: 320, H: 64, W: 64, O: 320, KH: 3, KW: 3, Stride: 1, Pad: 1}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			be.Conv2dBackwardInput(x.Buffer(), w.Buffer(), p)
		}
		sync(b, be)
		reportFLOPs(b, float64(p.FLOPs()))
	})
}

// sync waits for an asynchronous backend inside the timed region, so the
// figures are of finished work.
func sync(b *testing.B, be tensor.Backend) {
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
}

func reportFLOPs(b *testing.B, perOp float64) {
	b.ReportMetric(perOp*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
