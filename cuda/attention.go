//go:build cuda

package cuda

// #include "driver.h"
import "C"

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// attentionMaxD is the widest head the fused CUDA-core kernel takes (its
// per-lane accumulators are sized for it); SD heads are 40-160 wide.
// fa2Heads are the head widths kernels/attention_fa2.cu is instantiated for.
const attentionMaxD = 256

var fa2Heads = map[int]bool{40: true, 64: true, 80: true, 160: true}

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
// (kernels/attention_fa2.cu) for f16/bf16 heads 40, 64, 80 and 160 wide, in
// either layout of tensor.AttentionParams; on CUDA cores (kernels/attention.cu)
// for float and other widths; heads wider than 256, and float attention over
// many scores (explicitMinScores), go through matmul, softmax, matmul. The
// last two take packed split heads: strided operands (a fused QKV
// projection) are first copied out into packed ones, and interleaved heads
// are split and merged around them. Those paths serve float32 and unusual
// head widths, whose attention costs far more than the copies; teaching the
// CUDA-core kernel and the GEMM calls strides would buy little.
func (g *Backend) Attention(q, k, v tensor.Buffer, p tensor.AttentionParams) tensor.Buffer {
	qd, kd, vd := dev("attention", q), dev("attention", k), dev("attention", v)
	d := same("attention", qd, kd, vd)
	nq, nk, nv := p.Lens()
	need("attention", qd, nq)
	need("attention", kd, nk)
	need("attention", vd, nv)
	if g.fa2Fits(p, d, qd, kd, vd) {
		out := g.newBuffer(d, p.Batch*p.N*p.D)
		g.attentionFA2(out, nil, qd, kd, vd, p, d)
		return out
	}
	h := p.HeadCount()
	if !p.Packed() {
		// Columns [offset, offset+H·D) of [rows, stride] → packed [rows, H·D].
		pack := func(x tensor.Buffer, rows, stride, off int) tensor.Buffer {
			return g.Slice(x, p.Batch/h*rows, stride, off, h*p.D)
		}
		qs, ks, vs := p.Strides()
		qp, kp, vp := pack(q, p.N, qs, p.QOffset), pack(k, p.M, ks, p.KOffset), pack(v, p.M, vs, p.VOffset)
		pp := p
		pp.QStride, pp.KStride, pp.VStride, pp.QOffset, pp.KOffset, pp.VOffset = 0, 0, 0, 0, 0, 0
		out := g.Attention(qp, kp, vp, pp)
		g.Free(qp)
		g.Free(kp)
		g.Free(vp)
		return out
	}
	if h > 1 {
		// [B, rows, H, D] → [B, H, rows, D] and back.
		split := func(x tensor.Buffer, rows int) tensor.Buffer {
			return g.Permute(x, tensor.Shape{p.Batch / h, rows, h, p.D}, []int{0, 2, 1, 3})
		}
		qs, ks, vs := split(q, p.N), split(k, p.M), split(v, p.M)
		sp := p
		sp.Heads = 0
		o := g.Attention(qs, ks, vs, sp)
		g.Free(qs)
		g.Free(ks)
		g.Free(vs)
		out := g.Permute(o, tensor.Shape{p.Batch / h, h, p.N, p.D}, []int{0, 2, 1, 3})
		g.Free(o)
		return out
	}
	out := g.newBuffer(d, p.Batch*p.N*p.D)
	if p.D > attentionMaxD || p.Batch > 65535 || (d == tensor.Float32 && p.N*p.M >= explicitMinScores) {
		g.attentionExplicit(out, qd, kd, vd, p, d)
	} else {
		g.attentionCore(out, nil, qd, kd, vd, p, d)
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
// lse (float32 [Batch, N]) may be nil.
func (g *Backend) attentionCore(out, lse, q, k, v *buffer, p tensor.AttentionParams, d tensor.DType) {
	const warps, tile = 4, 32
	l := launch{grid: [3]int{(p.N + warps - 1) / warps, p.Batch, 1}, block: 32 * warps, shared: (2*tile*(p.D+1) + warps*p.D + warps*tile) * 4,
		flops: float64(p.FLOPs())}
	g.run("attention"+suffix(d), l, new(args).ptr(out.ptr).ptr(ptrOf(lse)).ptr(q.ptr).ptr(k.ptr).ptr(v.ptr).i32(int32(p.N)).i32(int32(p.M)).i32(int32(p.D)).f32(float32(p.Scale)),
		attentionWhat(p))
}

// fa2Fits says whether kernels/attention_fa2.cu takes p: a 16-bit dtype, a
// head width it is instantiated for (all multiples of 8), row strides and
// offsets of whole 16-byte chunks and 16-byte aligned buffers (so every row
// starts 16-byte aligned, as cp.async needs) and a grid of at most 65535
// (batch × head) rows.
func (g *Backend) fa2Fits(p tensor.AttentionParams, d tensor.DType, q, k, v *buffer) bool {
	if !fa2Shape(p, d) {
		return false
	}
	qs, ks, vs := p.Strides()
	for _, o := range []struct {
		b           *buffer
		stride, off int
	}{{q, qs, p.QOffset}, {k, ks, p.KOffset}, {v, vs, p.VOffset}} {
		if o.b.ptr%16 != 0 || o.stride*d.Size()%16 != 0 || o.off*d.Size()%16 != 0 {
			return false
		}
	}
	return true
}

// fa2Shape is fa2Fits's condition on the dtype and shape alone.
func fa2Shape(p tensor.AttentionParams, d tensor.DType) bool {
	return d != tensor.Float32 && fa2Heads[p.D] && p.Batch <= 65535
}

// attentionFA2 launches kernels/attention_fa2.cu: 64 queries per block of 4
// warps, one (batch entry, head) per grid row. q, k and v start at their
// offsets and their rows are their strides apart (Heads·D, D with split
// heads, when packed); out's rows are Heads·D apart. Shared memory holds the
// block's 64 query rows and two stages of a key and a value tile of 64
// rows (32 for heads over 128), each row the head rounded up to 16 plus 8
// elements of padding. lse (float32 [Batch, N]) may be nil.
func (g *Backend) attentionFA2(out, lse, q, k, v *buffer, p tensor.AttentionParams, d tensor.DType) {
	const rows, warps = 64, 4
	keys := 64
	if p.D > 128 {
		keys = 32
	}
	ld := (p.D+15)/16*16 + 8
	qs, ks, vs := p.Strides()
	at := func(x *buffer, off int) C.CUdeviceptr { return x.ptr + C.CUdeviceptr(off*d.Size()) }
	l := launch{grid: [3]int{(p.N + rows - 1) / rows, p.Batch, 1}, block: 32 * warps,
		shared: (rows + 4*keys) * ld * d.Size(), flops: float64(p.FLOPs())}
	a := new(args).ptr(out.ptr).ptr(ptrOf(lse)).ptr(at(q, p.QOffset)).ptr(at(k, p.KOffset)).ptr(at(v, p.VOffset)).i32(int32(p.N)).i32(int32(p.M)).
		i32(int32(p.HeadCount())).i32(int32(qs)).i32(int32(ks)).i32(int32(vs)).i32(int32(p.HeadCount() * p.D)).f32(float32(p.Scale * math.Log2E))
	g.run(fmt.Sprintf("attention_fa2_d%d%s", p.D, suffix(d)), l, a, attentionWhat(p))
}
