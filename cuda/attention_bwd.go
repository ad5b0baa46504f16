//go:build cuda

package cuda

// #include "driver.h"
import "C"

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// AttentionForward is Attention that also writes each query row's
// log-sum-exp (float32 [Batch, N]) for AttentionBackward: the same
// tensor-core kernel (kernels/attention_fa2.cu) where it fits, else the
// CUDA-core one (kernels/attention.cu), interleaved heads split and merged
// around it. Float attention over many scores takes the CUDA-core kernel
// here too, not matmul-softmax-matmul, which forms no log-sum-exp; that
// costs speed in a float32 guidance pass, not memory.
func (g *Backend) AttentionForward(q, k, v tensor.Buffer, p tensor.AttentionParams) (tensor.Buffer, tensor.Buffer) {
	requirePacked("attention with gradients", p)
	qd, kd, vd := dev("attention", q), dev("attention", k), dev("attention", v)
	d := same("attention", qd, kd, vd)
	need("attention", qd, p.Batch*p.N*p.D)
	need("attention", kd, p.Batch*p.M*p.D)
	need("attention", vd, p.Batch*p.M*p.D)
	lse := g.newBuffer(tensor.Float32, p.Batch*p.N)
	if g.fa2Fits(p, d, qd, kd, vd) {
		out := g.newBuffer(d, p.Batch*p.N*p.D)
		g.attentionFA2(out, lse, qd, kd, vd, p, d)
		return out, lse
	}
	if p.D > attentionMaxD || p.Batch > 65535 {
		panic(fmt.Sprintf("cuda: %s with gradients: heads over %d wide or over 65535 batch entries are not supported", attentionWhat(p), attentionMaxD))
	}
	if h := p.HeadCount(); h > 1 {
		qs, ks, vs := splitHeads(g, q, p, p.N), splitHeads(g, k, p, p.M), splitHeads(g, v, p, p.M)
		o, _ := g.attentionSplit(qs, ks, vs, lse, p, d)
		g.Free(qs)
		g.Free(ks)
		g.Free(vs)
		out := mergeHeads(g, o, p)
		g.Free(o)
		return out, lse
	}
	return g.attentionSplit(qd, kd, vd, lse, p, d)
}

// requirePacked refuses strided operands: the tape's attention is handed
// packed q, k and v (Narrow copies of a fused QKV), and only inference
// reads a fused projection in place.
func requirePacked(op string, p tensor.AttentionParams) {
	if !p.Packed() {
		panic(fmt.Sprintf("cuda: %s: strided operands (%s); the tape's attention takes packed q, k, v", op, attentionWhat(p)))
	}
}

func (g *Backend) attentionSplit(q, k, v tensor.Buffer, lse *buffer, p tensor.AttentionParams, d tensor.DType) (tensor.Buffer, tensor.Buffer) {
	out := g.newBuffer(d, p.Batch*p.N*p.D)
	sp := p
	sp.Heads = 0
	g.attentionCore(out, lse, dev("attention", q), dev("attention", k), dev("attention", v), sp, d)
	return out, lse
}

// splitHeads turns interleaved heads [B, rows, H, D] into [B, H, rows, D].
func splitHeads(g *Backend, x tensor.Buffer, p tensor.AttentionParams, rows int) tensor.Buffer {
	h := p.HeadCount()
	return g.Permute(x, tensor.Shape{p.Batch / h, rows, h, p.D}, []int{0, 2, 1, 3})
}

// mergeHeads turns [B, H, N, D] back into [B, N, H, D].
func mergeHeads(g *Backend, x tensor.Buffer, p tensor.AttentionParams) tensor.Buffer {
	h := p.HeadCount()
	return g.Permute(x, tensor.Shape{p.Batch / h, h, p.N, p.D}, []int{0, 2, 1, 3})
}

// AttentionBackward runs kernels/attention_fa2_bwd.cu where the forward's
// tensor-core kernel fits (f16/bf16, heads 40, 64, 80, 160 wide); elsewhere
// it composes matmul, softmax and its backward in float32, a chunk of the
// batch at a time (attentionBackwardExplicit).
func (g *Backend) AttentionBackward(q, k, v, out, lse, dout tensor.Buffer, p tensor.AttentionParams) (tensor.Buffer, tensor.Buffer, tensor.Buffer) {
	const op = "attention backward"
	requirePacked(op, p)
	qd, kd, vd, od, dod, ld := dev(op, q), dev(op, k), dev(op, v), dev(op, out), dev(op, dout), dev(op, lse)
	d := same(op, qd, kd, vd, od, dod)
	need(op, qd, p.Batch*p.N*p.D)
	need(op, kd, p.Batch*p.M*p.D)
	need(op, vd, p.Batch*p.M*p.D)
	need(op, od, p.Batch*p.N*p.D)
	need(op, dod, p.Batch*p.N*p.D)
	need(op, ld, p.Batch*p.N)
	if ld.dtype != tensor.Float32 {
		panic(fmt.Sprintf("cuda: %s: log-sum-exp in %v, want float32", op, ld.dtype))
	}
	if g.fa2Fits(p, d, qd, kd, vd) && od.ptr%16 == 0 && dod.ptr%16 == 0 {
		return g.attentionBackwardFA2(qd, kd, vd, od, ld, dod, p, d)
	}
	if d != tensor.Float32 {
		// In float32 and back: the scores, probabilities and dS of the
		// composed path would be rounded to 16 bits otherwise.
		f := func(x tensor.Buffer) tensor.Buffer { return g.Convert(x, tensor.Float32) }
		qf, kf, vf, dof := f(q), f(k), f(v), f(dout)
		dq, dk, dv := g.attentionBackwardHeads(qf, kf, vf, dof, p)
		for _, x := range []tensor.Buffer{qf, kf, vf, dof} {
			g.Free(x)
		}
		back := func(x tensor.Buffer) tensor.Buffer {
			y := g.Convert(x, d)
			g.Free(x)
			return y
		}
		return back(dq), back(dk), back(dv)
	}
	return g.attentionBackwardHeads(q, k, v, dout, p)
}

// attentionBackwardHeads is attentionBackwardExplicit for either layout:
// interleaved heads are split before and merged after.
func (g *Backend) attentionBackwardHeads(q, k, v, dout tensor.Buffer, p tensor.AttentionParams) (tensor.Buffer, tensor.Buffer, tensor.Buffer) {
	if p.HeadCount() == 1 {
		return g.attentionBackwardExplicit(dev("attention backward", q), dev("attention backward", k), dev("attention backward", v), dev("attention backward", dout), p)
	}
	qs, ks, vs, ds := splitHeads(g, q, p, p.N), splitHeads(g, k, p, p.M), splitHeads(g, v, p, p.M), splitHeads(g, dout, p, p.N)
	sp := p
	sp.Heads = 0
	dq, dk, dv := g.attentionBackwardExplicit(dev("attention backward", qs), dev("attention backward", ks), dev("attention backward", vs), dev("attention backward", ds), sp)
	for _, x := range []tensor.Buffer{qs, ks, vs, ds} {
		g.Free(x)
	}
	kp := p
	kp.N = p.M // keys merge over M rows
	merge := func(x tensor.Buffer, mp tensor.AttentionParams) tensor.Buffer {
		y := mergeHeads(g, x, mp)
		g.Free(x)
		return y
	}
	return merge(dq, p), merge(dk, kp), merge(dv, kp)
}

// attentionBackwardExplicit is the backward for split heads in float32 as
// separate ops, chunk by chunk of the batch as attentionExplicit bounds its
// scores: P = softmax(scale·q·kᵀ) recomputed (the same probabilities as
// exp(S - lse), so lse is not read), dv = Pᵀ·dout, dP = dout·vᵀ,
// dS = scale·P∘(dP - rowsum(dP∘P)) by the softmax backward (rowsum(dP∘P)
// is rowsum(dout∘out)), dq = dS·k, dk = dSᵀ·q.
func (g *Backend) attentionBackwardExplicit(q, k, v, dout *buffer, p tensor.AttentionParams) (tensor.Buffer, tensor.Buffer, tensor.Buffer) {
	const op, d = "attention backward", tensor.Float32
	dq, dk, dv := g.newBuffer(d, p.Batch*p.N*p.D), g.newBuffer(d, p.Batch*p.M*p.D), g.newBuffer(d, p.Batch*p.M*p.D)
	per := 2 * p.N * p.M * d.Size() // P and dP
	chunk := max(1, min(p.Batch, explicitChunkBytes/max(per, 1)))
	at := func(x *buffer, entry, stride int) C.CUdeviceptr { return x.ptr + C.CUdeviceptr(entry*stride*d.Size()) }
	nd, md, nm := p.N*p.D, p.M*p.D, p.N*p.M
	for b0 := 0; b0 < p.Batch && !g.failed(); b0 += chunk {
		nb := min(chunk, p.Batch-b0)
		scores := g.newBuffer(d, nb*nm)
		var scaled tensor.Buffer = scores
		if !g.scaledGemm(d, op, scores.ptr, at(q, b0, nd), at(k, b0, md), tensor.MatMulParams{Batch: nb, M: p.N, N: p.M, K: p.D, TransB: true, BatchStrideA: nd, BatchStrideB: md}, float32(p.Scale)) {
			scaled = g.Affine(scores, p.Scale, 0)
			g.Free(scores)
		}
		probs := g.Softmax(scaled, nb*p.N, p.M)
		g.Free(scaled)
		pd := dev(op, probs)
		g.gemm(d, op, at(dv, b0, md), pd.ptr, at(dout, b0, nd), tensor.MatMulParams{Batch: nb, M: p.M, N: p.D, K: p.N, TransA: true, BatchStrideA: nm, BatchStrideB: nd})
		dp := g.newBuffer(d, nb*nm)
		g.gemm(d, op, dp.ptr, at(dout, b0, nd), at(v, b0, md), tensor.MatMulParams{Batch: nb, M: p.N, N: p.M, K: p.D, TransB: true, BatchStrideA: nd, BatchStrideB: md})
		ds := g.SoftmaxBackward(probs, dp, nb*p.N, p.M)
		g.Free(probs)
		g.Free(dp)
		dss := g.Affine(ds, p.Scale, 0)
		g.Free(ds)
		sd := dev(op, dss)
		g.gemm(d, op, at(dq, b0, nd), sd.ptr, at(k, b0, md), tensor.MatMulParams{Batch: nb, M: p.N, N: p.D, K: p.M, BatchStrideA: nm, BatchStrideB: md})
		g.gemm(d, op, at(dk, b0, md), sd.ptr, at(q, b0, nd), tensor.MatMulParams{Batch: nb, M: p.M, N: p.D, K: p.N, TransA: true, BatchStrideA: nm, BatchStrideB: nd})
		g.Free(dss)
	}
	return dq, dk, dv
}

// attentionBackwardFA2 launches kernels/attention_fa2_bwd.cu: Di, then the
// key pass (dk, dv) and the query pass (dq), 64 rows per block of 4 warps,
// one (batch entry, head) per grid row. Shared memory holds the block's two
// row tiles and two stages of the two column tiles (64 rows, 32 for heads
// over 128; rows padded as the forward's), and the key pass's column
// statistics (two stages of lse and Di).
func (g *Backend) attentionBackwardFA2(q, k, v, out, lse, dout *buffer, p tensor.AttentionParams, d tensor.DType) (tensor.Buffer, tensor.Buffer, tensor.Buffer) {
	const rows, warps = 64, 4
	cols := 64
	if p.D > 128 {
		cols = 32
	}
	h, stride := int32(p.HeadCount()), int32(p.HeadCount()*p.D)
	what := fmt.Sprintf("attention backward of %d×[%d×%d] over %d keys", p.Batch, p.N, p.D, p.M)
	di := g.newBuffer(tensor.Float32, p.Batch*p.N)
	g.run("attention_bwd_di"+suffix(d), launch{grid: [3]int{(p.N + 3) / 4, p.Batch, 1}, block: 128},
		new(args).ptr(di.ptr).ptr(out.ptr).ptr(dout.ptr).i32(int32(p.N)).i32(h).i32(int32(p.D)).i32(stride), what)

	dq, dk, dv := g.newBuffer(d, p.Batch*p.N*p.D), g.newBuffer(d, p.Batch*p.M*p.D), g.newBuffer(d, p.Batch*p.M*p.D)
	ld := (p.D+15)/16*16 + 8
	shared := (2*rows+4*cols)*ld*d.Size() + 4*cols*4
	sl2, scale := float32(p.Scale*math.Log2E), float32(p.Scale)
	// The profile counts what each pass computes, 2·Batch·N·M·D per product:
	// four in the key pass (S, dP, dk, dv), three in the query pass (S, dP,
	// dq), 7 in all where tensor.FLOPCounter counts the backward's 5.
	flops := float64(p.FLOPs()) / 2
	tail := func(a *args) *args {
		return a.ptr(lse.ptr).ptr(di.ptr).i32(int32(p.N)).i32(int32(p.M)).i32(h).i32(stride).f32(sl2).f32(scale)
	}
	g.run(fmt.Sprintf("attention_fa2_bwd_kv_d%d%s", p.D, suffix(d)),
		launch{grid: [3]int{(p.M + rows - 1) / rows, p.Batch, 1}, block: 32 * warps, shared: shared, flops: 4 * flops},
		tail(new(args).ptr(dk.ptr).ptr(dv.ptr).ptr(q.ptr).ptr(k.ptr).ptr(v.ptr).ptr(dout.ptr)), what)
	g.run(fmt.Sprintf("attention_fa2_bwd_q_d%d%s", p.D, suffix(d)),
		launch{grid: [3]int{(p.N + rows - 1) / rows, p.Batch, 1}, block: 32 * warps, shared: shared, flops: 3 * flops},
		tail(new(args).ptr(dq.ptr).ptr(q.ptr).ptr(k.ptr).ptr(v.ptr).ptr(dout.ptr)), what)
	g.Free(di)
	return dq, dk, dv
}
