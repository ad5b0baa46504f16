//go:build cuda

package cuda

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// KernelGemm runs the products of p through the built-in GEMM kernels,
// whichever GEMM the backend picked, for the external tests.
func KernelGemm(gpu tensor.Backend, a, b tensor.Buffer, p tensor.MatMulParams) tensor.Buffer {
	g := gpu.(*Backend)
	ad, bd := dev("kernel gemm", a), dev("kernel gemm", b)
	out := g.newBuffer(ad.dtype, p.Batch*p.M*p.N)
	g.kernelGemm(ad.dtype, "test", out.ptr, ad.ptr, bd.ptr, p, "test", false)
	return out
}

// CoreAttention runs the CUDA-core attention kernel (kernels/attention.cu)
// whatever the dtype, for benchmarks that set it beside the tensor-core one.
func CoreAttention(b tensor.Backend, q, k, v tensor.Buffer, p tensor.AttentionParams) tensor.Buffer {
	g := b.(*Backend)
	qd, kd, vd := dev("core attention", q), dev("core attention", k), dev("core attention", v)
	out := g.newBuffer(qd.dtype, p.Batch*p.N*p.D)
	g.attentionCore(out, nil, qd, kd, vd, p, qd.dtype)
	return out
}

// OneBlockGroupNorm runs group norm with one block per (sample, group) run,
// whatever GroupNorm would pick, for benchmarks that set it beside the sliced kernels.
func OneBlockGroupNorm(b tensor.Backend, x, gamma, beta tensor.Buffer, p tensor.GroupNormParams) tensor.Buffer {
	y, mean, rstd := b.(*Backend).groupNorm(x, nil, gamma, beta, p, 1)
	b.Free(mean)
	b.Free(rstd)
	return y
}

// Im2col unfolds sample 0 of x [N, C, H, W] as Conv2d does (col [C·KH·KW,
// OH·OW]), for benchmarks that time it apart from the GEMM.
func Im2col(b tensor.Backend, x tensor.Buffer, p tensor.Conv2dParams) tensor.Buffer {
	g := b.(*Backend)
	xd := dev("im2col", x)
	col := g.newBuffer(xd.dtype, p.C*p.KH*p.KW*p.OutH()*p.OutW())
	g.im2col(xd.dtype, col.ptr, xd.ptr, p)
	return col
}

// WithExplicitAttention sends attention with at least minScores scores per
// batch entry through the explicit path, chunkBytes of scores at a time, until
// the returned function restores the defaults.
func WithExplicitAttention(minScores, chunkBytes int) (restore func()) {
	m, c := explicitMinScores, explicitChunkBytes
	explicitMinScores, explicitChunkBytes = minScores, chunkBytes
	return func() { explicitMinScores, explicitChunkBytes = m, c }
}

// FA2Attention runs kernels/attention_fa2.cu on p, for tests that must know
// the mma.sync kernel ran; it panics when the kernel does not take p.
func FA2Attention(b tensor.Backend, q, k, v tensor.Buffer, p tensor.AttentionParams) tensor.Buffer {
	g := b.(*Backend)
	qd, kd, vd := dev("fa2 attention", q), dev("fa2 attention", k), dev("fa2 attention", v)
	if !g.fa2Fits(p, qd.dtype, qd, kd, vd) {
		panic(fmt.Sprintf("cuda: attention_fa2 does not take %+v in %v", p, qd.dtype))
	}
	out := g.newBuffer(qd.dtype, p.Batch*p.N*p.D)
	g.attentionFA2(out, nil, qd, kd, vd, p, qd.dtype)
	return out
}

// FA2Fits reports whether attention of p in dtype d on b runs on the
// mma.sync kernels (forward and backward), for tests that must know.
func FA2Fits(b tensor.Backend, p tensor.AttentionParams, d tensor.DType) bool {
	return fa2Shape(p, d)
}

// Replays counts the graph launches so far, for tests that must know a
// graph ran.
func Replays(b tensor.Backend) int64 { return b.(*Backend).graph.replays.Load() }

// TrimCache returns the allocator's cached blocks to the driver, for tests
// that need a cache in a known state.
func TrimCache(b tensor.Backend) { b.(*Backend).mem.trim() }

// ImplicitGradient reports whether the input gradient of p in d on b runs
// on kernels/conv_implicit.cu, for tests that must know.
func ImplicitGradient(b tensor.Backend, p tensor.Conv2dParams, d tensor.DType) bool {
	return b.(*Backend).implicitGradient(p, d)
}

// CublasWorkspace allocates cuBLAS's graph workspace if it is not yet, and
// returns its size (0 with the built-in GEMM), for tests of its accounting.
func CublasWorkspace(b tensor.Backend) (int64, error) {
	g := b.(*Backend)
	p, err := g.cublasWorkspace()
	if p == 0 || err != nil {
		return 0, err
	}
	return workspaceBytes, nil
}
