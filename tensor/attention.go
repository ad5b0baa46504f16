package tensor

import "fmt"

// Attention returns softmax(scale·q·kᵀ)·v for q [..., N, D] and k, v [..., M, D]
// with the same leading axes, computed by the backend without materializing
// the scores. It is forward only: tracked inputs are refused.
func Attention(q, k, v *Tensor, scale float64) *Tensor {
	if q.Rank() < 2 || !k.shape.Equal(v.shape) || q.Rank() != k.Rank() || q.Dim(-1) != k.Dim(-1) {
		panic(fmt.Sprintf("tensor: attention: q %v, k %v, v %v", q.shape, k.shape, v.shape))
	}
	for i := 0; i < q.Rank()-2; i++ {
		if q.shape[i] != k.shape[i] {
			panic(fmt.Sprintf("tensor: attention: q %v and k %v differ in the batch axes", q.shape, k.shape))
		}
	}
	if q.Tracked() || k.Tracked() || v.Tracked() {
		panic("tensor: attention: the fused attention has no backward; compose matmul and softmax for gradients")
	}
	n, m, d := q.Dim(-2), k.Dim(-2), q.Dim(-1)
	p := AttentionParams{Batch: q.Numel() / (n * d), N: n, M: m, D: d, Scale: scale}
	return q.derive(q.b.Attention(q.buf, k.buf, v.buf, p), q.shape)
}
