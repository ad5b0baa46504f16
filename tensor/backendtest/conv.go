package backendtest

import (
	"fmt"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func testConv2dForward(t *testing.T, f forward) {
	for _, c := range []struct{ n, c, h, w, o, k, s, p int }{
		{2, 3, 8, 8, 4, 3, 1, 1}, {1, 5, 9, 7, 6, 3, 2, 1}, {2, 8, 5, 5, 3, 1, 1, 0}, {1, 2, 6, 6, 2, 3, 1, 0},
	} {
		t.Run(fmt.Sprintf("%dx%dx%dx%d_k%d_s%d_p%d", c.n, c.c, c.h, c.w, c.k, c.s, c.p), func(t *testing.T) {
			xv, x := f.host(7, c.n, c.c, c.h, c.w)
			wv, w := f.host(8, c.o, c.c, c.k, c.k)
			bv, bias := f.host(9, c.o)
			got := x.Conv2d(w, bias, c.s, c.p)
			want := refConv2d(xv, wv, bv, c.n, c.c, c.h, c.w, c.o, c.k, c.k, c.s, c.p)
			f.check(t, got, got.Shape(), want)
		})
	}
}

// Conv2dAdd adds the residual where the product accumulates: the same as the
// convolution plus the residual, with and without a bias, for a pointwise, a
// padded and a strided kernel (the im2col path in chunks and the direct one).
func testConv2dResidualForward(t *testing.T, f forward) {
	for _, c := range []struct {
		n, c, h, w, o, k, s, p int
		bias                   bool
	}{
		{2, 3, 8, 8, 4, 3, 1, 1, true}, {1, 5, 9, 7, 6, 3, 2, 1, false}, {2, 8, 5, 5, 3, 1, 1, 0, true}, {2, 8, 6, 5, 3, 1, 1, 0, false},
	} {
		t.Run(fmt.Sprintf("%dx%dx%dx%d_to%d_k%d_s%d_p%d_bias%v", c.n, c.c, c.h, c.w, c.o, c.k, c.s, c.p, c.bias), func(t *testing.T) {
			xv, x := f.host(7, c.n, c.c, c.h, c.w)
			wv, w := f.host(8, c.o, c.c, c.k, c.k)
			bv, bias := f.host(9, c.o)
			if !c.bias {
				bv, bias = nil, nil
			}
			want := refConv2d(xv, wv, bv, c.n, c.c, c.h, c.w, c.o, c.k, c.k, c.s, c.p)
			rv, res := f.host(10, c.n, c.o, (c.h+2*c.p-c.k)/c.s+1, (c.w+2*c.p-c.k)/c.s+1)
			for i := range want {
				want[i] += rv[i]
			}
			got := x.Conv2dAdd(w, bias, res, c.s, c.p)
			f.check(t, got, res.Shape(), want)
		})
	}
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

func refConv2d(x, w, bias []float64, n, c, h, wd, o, kh, kw, stride, pad int) []float64 {
	oh, ow := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	out := make([]float64, n*o*oh*ow)
	for s := 0; s < n; s++ {
		for oc := 0; oc < o; oc++ {
			for y := 0; y < oh; y++ {
				for xx := 0; xx < ow; xx++ {
					acc := 0.0
					if bias != nil {
						acc = bias[oc]
					}
					for ic := 0; ic < c; ic++ {
						for ky := 0; ky < kh; ky++ {
							for kx := 0; kx < kw; kx++ {
								iy, ix := y*stride+ky-pad, xx*stride+kx-pad
								if iy >= 0 && iy < h && ix >= 0 && ix < wd {
									acc += x[((s*c+ic)*h+iy)*wd+ix] * w[((oc*c+ic)*kh+ky)*kw+kx]
								}
							}
						}
					}
					out[((s*o+oc)*oh+y)*ow+xx] = acc
				}
			}
		}
	}
	return out
}
