//go:build cuda

package cuda_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/cuda"
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

// BenchmarkConv2dBackwardInput times the input gradient of the UNet's 3×3
// convolutions at 512² and batch 1 (a guidance pass's shapes) on both paths
// side by side, in TFLOP/s of the products (gpu-check.sh records the rows,
// call "conv2d_bwd_input NxCxHxW_toO PATH"): "implicit" is
// kernels/conv_implicit.cu (the default), "im2col" the GEMM into a column
// buffer and col2im (RFNET_CONV=im2col).
func BenchmarkConv2dBackwardInput(b *testing.B) {
	g := device(b)
	be := g.(*cuda.Backend)
	for _, d := range []tensor.DType{tensor.Float16, tensor.BFloat16} {
		for _, c := range []tensor.Conv2dParams{
			{N: 1, C: 320, H: 64, W: 64, O: 320, KH: 3, KW: 3, Stride: 1, Pad: 1},   // level 0
			{N: 1, C: 640, H: 32, W: 32, O: 640, KH: 3, KW: 3, Stride: 1, Pad: 1},   // level 1
			{N: 1, C: 1280, H: 16, W: 16, O: 1280, KH: 3, KW: 3, Stride: 1, Pad: 1}, // level 2
			{N: 1, C: 1280, H: 8, W: 8, O: 1280, KH: 3, KW: 3, Stride: 1, Pad: 1},   // level 3
			{N: 1, C: 2560, H: 16, W: 16, O: 1280, KH: 3, KW: 3, Stride: 1, Pad: 1}, // an up block's first conv
		} {
			dy := backendtest.Randn(g, d, 1, c.N, c.O, c.OutH(), c.OutW())
			w := backendtest.Randn(g, d, 2, c.O, c.C, c.KH, c.KW)
			for _, path := range []cuda.Conv2dPath{cuda.ConvImplicit, cuda.ConvIm2col} {
				b.Run(fmt.Sprintf("%s/%dx%dx%dx%d_to%d/%s", d, c.N, c.C, c.H, c.W, c.O, path), func(b *testing.B) {
					defer be.SetConv2dPath(be.SetConv2dPath(path))
					for range b.N {
						g.Free(g.Conv2dBackwardInput(dy.Buffer(), w.Buffer(), c))
					}
					syncOK(b, g)
					b.ReportMetric(float64(c.FLOPs())*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
				})
			}
		}
	}
}

// BenchmarkAttention times attention at SD's self-attention shapes (batch 2
// × heads, 64² and 32² latents, and SD 2.1's 64² latent against its 77 text
// tokens) and reports TFLOP/s of the two products: "picked" is what
// tensor.Attention picks (the mma.sync kernel attention_fa2 for f16/bf16; for
// float32 the explicit matmul, softmax, matmul over 2^20 scores per head, the
// fused CUDA-core kernel below), "core" the fused CUDA-core kernel at the same
// shape, side by side.
func BenchmarkAttention(b *testing.B) {
	type kernel struct {
		name string
		run  func()
	}
	g := device(b)
	for _, d := range computeDTypes {
		for _, c := range []struct{ batch, n, m, dim int }{{16, 4096, 4096, 40}, {16, 1024, 1024, 80}, {10, 4096, 4096, 64}, {10, 4096, 77, 64}} {
			q := backendtest.Randn(g, d, 1, c.batch, c.n, c.dim)
			k := backendtest.Randn(g, d, 2, c.batch, c.m, c.dim)
			v := backendtest.Randn(g, d, 3, c.batch, c.m, c.dim)
			scale := 1 / math.Sqrt(float64(c.dim))
			p := tensor.AttentionParams{Batch: c.batch, N: c.n, M: c.m, D: c.dim, Scale: scale}
			kernels := []kernel{{"picked", func() { tensor.Attention(q, k, v, scale).Free() }},
				{"core", func() { g.Free(cuda.CoreAttention(g, q.Buffer(), k.Buffer(), v.Buffer(), p)) }}}
			for _, kern := range kernels {
				b.Run(fmt.Sprintf("%s/%s/%dx%dx%dx%d", d, kern.name, c.batch, c.n, c.m, c.dim), func(b *testing.B) {
					for range b.N {
						kern.run()
					}
					syncOK(b, g)
					b.ReportMetric(float64(p.FLOPs())*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
				})
			}
		}
	}
}

// BenchmarkAttentionHeads times attention_fa2 on the layout the UNet now
// passes, heads interleaved in the projections' rows ([2, N, H·D] in and
// out, no permutes), at SD shapes: SD 1.5's 64² and 32² self-attention (8
// heads of 40 and 80), SD 2.1's 64² self- and cross-attention (5 heads of
// 64) and its 16² blocks (20 heads of 64), and SD 1.5's 16² (8 of 160). It
// reports TFLOP/s of the two products; run it on a GPU to get figures.
func BenchmarkAttentionHeads(b *testing.B) {
	g := device(b)
	for _, d := range []tensor.DType{tensor.Float16, tensor.BFloat16} {
		for _, c := range []struct{ heads, n, m, dim int }{{8, 4096, 4096, 40}, {8, 1024, 1024, 80}, {5, 4096, 4096, 64},
			{5, 4096, 77, 64}, {20, 256, 256, 64}, {8, 256, 256, 160}} {
			q := backendtest.Randn(g, d, 1, 2, c.n, c.heads*c.dim)
			k := backendtest.Randn(g, d, 2, 2, c.m, c.heads*c.dim)
			v := backendtest.Randn(g, d, 3, 2, c.m, c.heads*c.dim)
			scale := 1 / math.Sqrt(float64(c.dim))
			p := tensor.AttentionParams{Batch: 2 * c.heads, N: c.n, M: c.m, D: c.dim, Heads: c.heads, Scale: scale}
			b.Run(fmt.Sprintf("%s/2x%dh/%dx%dx%d", d, c.heads, c.n, c.m, c.dim), func(b *testing.B) {
				for range b.N {
					tensor.AttentionHeads(q, k, v, c.heads, scale).Free()
				}
				syncOK(b, g)
				b.ReportMetric(float64(p.FLOPs())*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
			})
		}
	}
}

// BenchmarkGroupNorm times group norm at SD's largest shapes (batch-2 UNet
// at 64² and 16², the VAE decoder at 256² and 512²) in GB/s of x read once
// and y written once: "auto" is what GroupNorm picks (runs cut into slices
// when they are few and long), "one_block" one block per run, side by side;
// "silu_fused" the group norm + SiLU of the ResNet blocks as one op, and
// "silu_pair" the same as GroupNorm then SiLU (two passes, counted as the
// fused op's bytes, so the two GB/s compare as times).
func BenchmarkGroupNorm(b *testing.B) {
	g := device(b)
	for _, d := range computeDTypes {
		for _, c := range []struct{ n, c, hw int }{{2, 320, 64 * 64}, {2, 1280, 16 * 16}, {1, 256, 256 * 256}, {1, 128, 512 * 512}} {
			x := backendtest.Randn(g, d, 1, c.n, c.c, c.hw)
			gamma := backendtest.Randn(g, d, 2, c.c)
			beta := backendtest.Randn(g, d, 3, c.c)
			p := tensor.GroupNormParams{N: c.n, C: c.c, HW: c.hw, Groups: 32, Eps: 1e-6}
			for _, kern := range []struct {
				name string
				run  func() tensor.Buffer
			}{
				{"auto", func() tensor.Buffer {
					y, mean, rstd := g.GroupNorm(x.Buffer(), nil, gamma.Buffer(), beta.Buffer(), p)
					g.Free(mean)
					g.Free(rstd)
					return y
				}},
				{"one_block", func() tensor.Buffer { return cuda.OneBlockGroupNorm(g, x.Buffer(), gamma.Buffer(), beta.Buffer(), p) }},
				{"silu_fused", func() tensor.Buffer {
					ps := p
					ps.SiLU = true
					y, mean, rstd := g.GroupNorm(x.Buffer(), nil, gamma.Buffer(), beta.Buffer(), ps)
					g.Free(mean)
					g.Free(rstd)
					return y
				}},
				{"silu_pair", func() tensor.Buffer {
					z, mean, rstd := g.GroupNorm(x.Buffer(), nil, gamma.Buffer(), beta.Buffer(), p)
					g.Free(mean)
					g.Free(rstd)
					y := g.Unary(tensor.SiLU, z)
					g.Free(z)
					return y
				}},
			} {
				b.Run(fmt.Sprintf("%s/%s/%dx%dx%d", d, kern.name, c.n, c.c, c.hw), func(b *testing.B) {
					for range b.N {
						g.Free(kern.run())
					}
					syncOK(b, g)
					bytes := 2 * float64(c.n*c.c*c.hw*d.Size())
					b.ReportMetric(bytes*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
				})
			}
		}
	}
}

// BenchmarkDataMovement times the index-mapping kernels at the UNet's 64²
// shapes (batch 2, SD 2.1: 320 channels, 5 heads of 64) in GB/s of the
// bytes each reads and writes once, beside "copy" (a·x+b, no index
// arithmetic: what the card streams at). A kernel well below copy spends
// its time on arithmetic rather than memory.
func BenchmarkDataMovement(b *testing.B) {
	g := device(b)
	for _, d := range computeDTypes {
		x := backendtest.Randn(g, d, 1, 2, 320, 64, 64) // [N, C, H, W], also [N, tokens, heads, 64]
		perChannel := backendtest.Randn(g, d, 2, 2, 320, 1, 1)
		half := backendtest.Randn(g, d, 3, 2, 160, 64, 64)
		small := backendtest.Randn(g, d, 4, 2, 320, 32, 32)
		n := 2 * 320 * 64 * 64
		conv := tensor.Conv2dParams{N: 2, C: 320, H: 64, W: 64, O: 320, KH: 3, KW: 3, Stride: 1, Pad: 1}
		for _, c := range []struct {
			name  string
			elems int // elements read and written
			run   func() tensor.Buffer
		}{
			{"copy", 2 * n, func() tensor.Buffer { return g.Affine(x.Buffer(), 1, 0) }},
			{"im2col_3x3", n/2 + 9*n/2, func() tensor.Buffer { return cuda.Im2col(g, x.Buffer(), conv) }},
			{"permute_heads", 2 * n, func() tensor.Buffer {
				return g.Permute(x.Buffer(), tensor.Shape{2, 4096, 5, 64}, []int{0, 2, 1, 3})
			}},
			{"add_per_channel", 2 * n, func() tensor.Buffer {
				return g.Binary(tensor.Add, x.Buffer(), perChannel.Buffer(), tensor.Broadcast{Shape: tensor.Shape{2, 320, 64, 64},
					StrideA: []int{320 * 4096, 4096, 64, 1}, StrideB: []int{320, 1, 0, 0}})
			}},
			{"concat_channels", 2 * n, func() tensor.Buffer {
				return g.Concat([]tensor.Buffer{half.Buffer(), half.Buffer()}, 2, []int{160 * 4096, 160 * 4096})
			}},
			{"upsample2x", 5 * n / 4, func() tensor.Buffer { return g.Upsample2x(small.Buffer(), 2*320, 32, 32) }},
		} {
			b.Run(fmt.Sprintf("%s/%s", d, c.name), func(b *testing.B) {
				for range b.N {
					g.Free(c.run())
				}
				syncOK(b, g)
				b.ReportMetric(float64(c.elems*d.Size())*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}
