//go:build cuda

package cuda

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// attentionMaxD is the widest head the fused kernel takes (its per-lane
// accumulators are sized for it); SD heads are 40-160 wide.
const attentionMaxD = 256

// Attention is the fused flash-style kernel of kernels/attention.cu; heads
// wider than it takes go through matmul, softmax, matmul.
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
	const warps, tile = 4, 32
	l := launch{grid: [3]int{(p.N + warps - 1) / warps, p.Batch, 1}, block: 32 * warps, shared: (2*tile*(p.D+1) + warps*p.D) * 4}
	b.run("attention"+suffix("", d), l, new(args).ptr(out.ptr).ptr(qd.ptr).ptr(kd.ptr).ptr(vd.ptr).i32(int32(p.N)).i32(int32(p.M)).i32(int32(p.D)).f32(float32(p.Scale)),
		fmt.Sprintf("attention of %d×[%d×%d] over %d keys", p.Batch, p.N, p.D, p.M))
	return out
}
