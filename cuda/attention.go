//go:build cuda

package cuda

// #include "driver.h"
import "C"

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// attentionMaxD is the widest head the fused kernels take (the per-lane
// accumulators of attention.cu are sized for it); SD heads are 40-160 wide.
// attentionTCMaxD is the widest the tensor-core kernel takes (its fragments
// live in registers: 64 or 128 columns).
const (
	attentionMaxD   = 256
	attentionTCMaxD = 128
)

// explicitMinScores: float attention with at least this many scores per
// batch entry (N·M) goes through matmul, softmax, matmul. On an H100 the
// CUDA-core fused kernel ran SD 1.5's 64² self-attention (16×4096×4096×40)
// at 2.9 TFLOP/s, 15 ms, half of a float32 UNet call; cuBLAS's float GEMMs and
// the softmax's pass over the scores took 3.6 ms (2.7 on an H200). Below it (77 text
// keys, small latents) the fused kernel wins: the scores would cost more
// traffic than the products.
//
// explicitChunkBytes bounds the scores held at once: the batch goes through
// in chunks of entries whose N·M scores fit (at least one entry).
var (
	explicitMinScores  = 1 << 20
	explicitChunkBytes = 256 << 20
)

// Attention is a fused flash-style kernel: on tensor cores
// (kernels/attention_tc.cu) for f16/bf16 heads up to 128 wide, on CUDA cores
// (kernels/attention.cu) for float and wider heads; heads wider than 256, and
// float attention over many scores (explicitMinScores), go through matmul,
// softmax, matmul.
func (g *Backend) Attention(q, k, v tensor.Buffer, p tensor.AttentionParams) tensor.Buffer {
	qd, kd, vd := dev("attention", q), dev("attention", k), dev("attention", v)
	d := same("attention", qd, kd, vd)
	need("attention", qd, p.Batch*p.N*p.D)
	need("attention", kd, p.Batch*p.M*p.D)
	need("attention", vd, p.Batch*p.M*p.D)
	out := g.newBuffer(d, p.Batch*p.N*p.D)
	switch {
	case p.D > attentionMaxD || p.Batch > 65535 || (d == tensor.Float32 && p.N*p.M >= explicitMinScores):
		g.attentionExplicit(out, qd, kd, vd, p, d)
	case d != tensor.Float32 && p.D <= attentionTCMaxD:
		g.attentionTC(out, qd, kd, vd, p, d)
	default:
		g.attentionCore(out, qd, kd, vd, p, d)
	}
	return out
}

// attentionExplicit writes softmax(scale·q·kᵀ)·v into out chunk by chunk of
// the batch: scale·q·kᵀ by cuBLAS (alpha = scale), or by the built-in GEMM and
// a scaling pass, normalized by the softmax kernel, then the product with v
// straight into out's slice of the chunk.
func (g *Backend) attentionExplicit(out, q, k, v *buffer, p tensor.AttentionParams, d tensor.DType) {
	per := p.N * p.M * d.Size()
	chunk := max(1, min(p.Batch, explicitChunkBytes/max(per, 1)))
	at := func(x *buffer, entry, stride int) C.CUdeviceptr {
		return x.ptr + C.CUdeviceptr(entry*stride*d.Size())
	}
	for b0 := 0; b0 < p.Batch && !g.failed(); b0 += chunk {
		nb := min(chunk, p.Batch-b0)
		scores := g.newBuffer(d, nb*p.N*p.M)
		qk := tensor.MatMulParams{Batch: nb, M: p.N, N: p.M, K: p.D, TransB: true, BatchStrideA: p.N * p.D, BatchStrideB: p.M * p.D}
		var scaled tensor.Buffer = scores
		if !g.scaledGemm(d, "attention", scores.ptr, at(q, b0, p.N*p.D), at(k, b0, p.M*p.D), qk, float32(p.Scale)) {
			scaled = g.Affine(scores, p.Scale, 0)
			g.Free(scores)
		}
		probs := g.Softmax(scaled, nb*p.N, p.M)
		g.Free(scaled)
		g.gemm(d, "attention", at(out, b0, p.N*p.D), dev("attention", probs).ptr, at(v, b0, p.M*p.D), tensor.MatMulParams{Batch: nb, M: p.N, N: p.D, K: p.M,
			BatchStrideA: p.N * p.M, BatchStrideB: p.M * p.D})
		g.Free(probs)
	}
}

func attentionWhat(p tensor.AttentionParams) string {
	return fmt.Sprintf("attention of %d×[%d×%d] over %d keys", p.Batch, p.N, p.D, p.M)
}

// attentionCore launches kernels/attention.cu: 4 query rows per block of 4
// warps; shared memory holds a key and a value tile of 32 rows (padded by
// one column), each warp's scaled query row and its 32 probabilities, in float.
func (g *Backend) attentionCore(out, q, k, v *buffer, p tensor.AttentionParams, d tensor.DType) {
	const warps, tile = 4, 32
	l := launch{grid: [3]int{(p.N + warps - 1) / warps, p.Batch, 1}, block: 32 * warps, shared: (2*tile*(p.D+1) + warps*p.D + warps*tile) * 4,
		flops: float64(p.FLOPs())}
	g.run("attention"+suffix(d), l, new(args).ptr(out.ptr).ptr(q.ptr).ptr(k.ptr).ptr(v.ptr).i32(int32(p.N)).i32(int32(p.M)).i32(int32(p.D)).f32(float32(p.Scale)),
		attentionWhat(p))
}

// attentionTC launches kernels/attention_tc.cu: 64 queries per block of 4
// warps; shared memory holds a key and a value tile (64 rows of the head
// rounded up to 16, plus 8 of padding), each warp's float scratch, and 32
// bytes of alignment slack.
func (g *Backend) attentionTC(out, q, k, v *buffer, p tensor.AttentionParams, d tensor.DType) {
	const rows, tile, warps, scratch = 64, 64, 4, 16*68 + 16
	name := "attention_tc4" // heads up to 64 wide
	if p.D > 64 {
		name = "attention_tc8"
	}
	ld := (p.D+15)/16*16 + 8
	l := launch{grid: [3]int{(p.N + rows - 1) / rows, p.Batch, 1}, block: 32 * warps,
		shared: 2*tile*ld*d.Size() + warps*scratch*4 + 32, flops: float64(p.FLOPs())}
	g.run(name+suffix(d), l, new(args).ptr(out.ptr).ptr(q.ptr).ptr(k.ptr).ptr(v.ptr).i32(int32(p.N)).i32(int32(p.M)).i32(int32(p.D)).f32(float32(p.Scale)),
		attentionWhat(p))
}
