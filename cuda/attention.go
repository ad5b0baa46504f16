//go:build cuda

package cuda

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

// Attention is a fused flash-style kernel: on tensor cores
// (kernels/attention_tc.cu) for f16/bf16 heads up to 128 wide, on CUDA cores
// (kernels/attention.cu) for float and wider heads; heads wider than 256 go
// through matmul, softmax, matmul.
func (b *Backend) Attention(q, k, v tensor.Buffer, p tensor.AttentionParams) tensor.Buffer {
	qd, kd, vd := dev("attention", q), dev("attention", k), dev("attention", v)
	d := same("attention", qd, kd, vd)
	need("attention", qd, p.Batch*p.N*p.D)
	need("attention", kd, p.Batch*p.M*p.D)
	need("attention", vd, p.Batch*p.M*p.D)
	if p.D > attentionMaxD || p.Batch > 65535 {
		scores := b.MatMul(q, k, tensor.MatMulParams{Batch: p.Batch, M: p.N, N: p.M, K: p.D, TransB: true,
			BatchStrideA: p.N * p.D, BatchStrideB: p.M * p.D})
		scaled := b.Affine(scores, p.Scale, 0)
		b.Free(scores)
		probs := b.Softmax(scaled, p.Batch*p.N, p.M)
		b.Free(scaled)
		out := b.MatMul(probs, v, tensor.MatMulParams{Batch: p.Batch, M: p.N, N: p.D, K: p.M,
			BatchStrideA: p.N * p.M, BatchStrideB: p.M * p.D})
		b.Free(probs)
		return out
	}
	out := b.newBuffer(d, p.Batch*p.N*p.D)
	if d != tensor.Float32 && p.D <= attentionTCMaxD {
		b.attentionTC(out, qd, kd, vd, p, d)
	} else {
		b.attentionCore(out, qd, kd, vd, p, d)
	}
	return out
}

func attentionWhat(p tensor.AttentionParams) string {
	return fmt.Sprintf("attention of %d×[%d×%d] over %d keys", p.Batch, p.N, p.D, p.M)
}

// attentionCore launches kernels/attention.cu: 4 query rows per block of 4
// warps; shared memory holds a key and a value tile of 32 rows (padded by
// one column), each warp's scaled query row and its 32 probabilities, in float.
func (b *Backend) attentionCore(out, q, k, v *buffer, p tensor.AttentionParams, d tensor.DType) {
	const warps, tile = 4, 32
	l := launch{grid: [3]int{(p.N + warps - 1) / warps, p.Batch, 1}, block: 32 * warps, shared: (2*tile*(p.D+1) + warps*p.D + warps*tile) * 4,
		flops: float64(p.FLOPs())}
	b.run("attention"+suffix("", d), l, new(args).ptr(out.ptr).ptr(q.ptr).ptr(k.ptr).ptr(v.ptr).i32(int32(p.N)).i32(int32(p.M)).i32(int32(p.D)).f32(float32(p.Scale)),
		attentionWhat(p))
}

// attentionTC launches kernels/attention_tc.cu: 64 queries per block of 4
// warps; shared memory holds a key and a value tile (64 rows of the head
// rounded up to 16, plus 8 of padding), each warp's float scratch, and 32
// bytes of alignment slack.
func (b *Backend) attentionTC(out, q, k, v *buffer, p tensor.AttentionParams, d tensor.DType) {
	const rows, tile, warps, scratch = 64, 64, 4, 16*68 + 16
	name := "attention_tc4" // heads up to 64 wide
	if p.D > 64 {
		name = "attention_tc8"
	}
	ld := (p.D+15)/16*16 + 8
	l := launch{grid: [3]int{(p.N + rows - 1) / rows, p.Batch, 1}, block: 32 * warps,
		shared: 2*tile*ld*d.Size() + warps*scratch*4 + 32, flops: float64(p.FLOPs())}
	b.run(name+suffix("", d), l, new(args).ptr(out.ptr).ptr(q.ptr).ptr(k.ptr).ptr(v.ptr).i32(int32(p.N)).i32(int32(p.M)).i32(int32(p.D)).f32(float32(p.Scale)),
		attentionWhat(p))
}
