package tensor

import "fmt"

// Attention returns softmax(scale·q·kᵀ)·v for q [..., N, D] and k, v [..., M, D]
// with the same leading axes, computed by the backend without materializing
// the scores. With tracked inputs it is recorded on the tape: the forward
// also keeps each query row's log-sum-exp, from which the backward
// recomputes the probabilities (AttentionBackward).
func Attention(q, k, v *Tensor, scale float64) *Tensor {
	if q.Rank() < 2 || !k.shape.Equal(v.shape) || q.Rank() != k.Rank() || q.Dim(-1) != k.Dim(-1) {
		panic(fmt.Sprintf("tensor: attention: q %v, k %v, v %v", q.shape, k.shape, v.shape))
	}
	for i := 0; i < q.Rank()-2; i++ {
		if q.shape[i] != k.shape[i] {
			panic(fmt.Sprintf("tensor: attention: q %v and k %v differ in the batch axes", q.shape, k.shape))
		}
	}
	n, m, d := q.Dim(-2), k.Dim(-2), q.Dim(-1)
	return attention(q, k, v, AttentionParams{Batch: q.Numel() / (n * d), N: n, M: m, D: d, Scale: scale})
}

// AttentionHeads is Attention over heads that interleave in each row, as the
// q, k and v projections write them: q [B, N, heads·D], k and v [B, M, heads·D],
// the result [B, N, heads·D]. It saves the split and merge permutes of
// [B, heads, N, D] around Attention, which compute the same.
func AttentionHeads(q, k, v *Tensor, heads int, scale float64) *Tensor {
	if q.Rank() != 3 || k.Rank() != 3 || !k.shape.Equal(v.shape) || q.Dim(0) != k.Dim(0) || q.Dim(2) != k.Dim(2) || heads < 1 || q.Dim(2)%heads != 0 {
		panic(fmt.Sprintf("tensor: attention over %d heads: q %v, k %v, v %v", heads, q.shape, k.shape, v.shape))
	}
	return attention(q, k, v, AttentionParams{Batch: q.Dim(0) * heads, N: q.Dim(1), M: k.Dim(1), D: q.Dim(2) / heads, Heads: heads, Scale: scale})
}

// attention runs the inference kernel when nothing is tracked, and the
// forward that also returns the log-sum-exp (saved for the backward) when
// something is.
func attention(q, k, v *Tensor, p AttentionParams) *Tensor {
	if !q.Tracked() && !k.Tracked() && !v.Tracked() {
		return q.derive(q.b.Attention(q.buf, k.buf, v.buf, p), q.shape)
	}
	o, lse := q.b.AttentionForward(q.buf, k.buf, v.buf, p)
	out := q.derive(o, q.shape)
	record(OpAttention, out, []*Tensor{q, k, v}, []*Tensor{q.derive(lse, Shape{p.Batch, p.N})}, p)
	return out
}

// AttentionQKV is AttentionHeads over the three thirds of one fused
// projection qkv [B, N, 3·heads·D] (q, then k, then v in each row, as a
// Linear with the three weights stacked writes them): the backend reads them
// in place through row strides, and the result is [B, N, heads·D].
func AttentionQKV(qkv *Tensor, heads int, scale float64) *Tensor {
	if qkv.Rank() != 3 || heads < 1 || qkv.Dim(2)%(3*heads) != 0 {
		panic(fmt.Sprintf("tensor: fused qkv attention over %d heads: qkv %v", heads, qkv.shape))
	}
	if qkv.Tracked() {
		panic("tensor: fused qkv attention: tracked input; its tape form is AttentionHeads of the three Narrow thirds (nn.Attention)")
	}
	inner := qkv.Dim(2) / 3
	p := AttentionParams{Batch: qkv.Dim(0) * heads, N: qkv.Dim(1), M: qkv.Dim(1), D: inner / heads, Heads: heads, Scale: scale,
		QStride: 3 * inner, KStride: 3 * inner, VStride: 3 * inner, QOffset: 0, KOffset: inner, VOffset: 2 * inner}
	return qkv.derive(qkv.b.Attention(qkv.buf, qkv.buf, qkv.buf, p), Shape{qkv.Dim(0), qkv.Dim(1), inner})
}
