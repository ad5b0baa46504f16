package tensor

import "fmt"

type matmulAttr struct{ transA, transB bool }

// MatMul returns a·b for a [..., M, K] and b [..., K, N]. Either operand may be a
// plain matrix shared across the other's batch; otherwise the batch axes must match.
func (t *Tensor) MatMul(b *Tensor) *Tensor { return MatMulT(t, b, false, false) }

// MatMulT returns op(a)·op(b), where op transposes the last two axes when the flag is set.
func MatMulT(a, b *Tensor, transA, transB bool) *Tensor {
	if a.Rank() < 2 || b.Rank() < 2 {
		panic(fmt.Sprintf("tensor: matmul: shapes %v and %v need at least two axes", a.shape, b.shape))
	}
	if a.DType() != b.DType() {
		panic(fmt.Sprintf("tensor: matmul: dtypes %s and %s", a.DType(), b.DType()))
	}
	ra, ca := a.shape[a.Rank()-2], a.shape[a.Rank()-1]
	rb, cb := b.shape[b.Rank()-2], b.shape[b.Rank()-1]
	m, k := ra, ca
	if transA {
		m, k = ca, ra
	}
	kb, n := rb, cb
	if transB {
		kb, n = cb, rb
	}
	batchA, batchB := a.shape[:a.Rank()-2], b.shape[:b.Rank()-2]
	var batch Shape
	switch {
	case len(batchA) == 0:
		batch = batchB
	case len(batchB) == 0 || batchA.Equal(batchB):
		batch = batchA
	default:
		panic(fmt.Sprintf("tensor: matmul: batch axes of %v and %v differ", a.shape, b.shape))
	}
	if k != kb {
		panic(fmt.Sprintf("tensor: matmul: shapes %v and %v (transA=%v transB=%v): inner sizes %d and %d", a.shape, b.shape, transA, transB, k, kb))
	}
	p := MatMulParams{Batch: batch.Numel(), M: m, N: n, K: k, TransA: transA, TransB: transB}
	if len(batchA) > 0 {
		p.BatchStrideA = m * k
	}
	if len(batchB) > 0 {
		p.BatchStrideB = k * n
	}
	shape := append(batch.Clone(), m, n)
	out := a.derive(a.b.MatMul(a.buf, b.buf, p), shape)
	record(OpMatMul, out, []*Tensor{a, b}, nil, matmulAttr{transA, transB})
	return out
}

// Linear returns x·wᵀ + bias for x [..., In], a weight w [Out, In] and bias [Out] (may be nil).
func (t *Tensor) Linear(w, bias *Tensor) *Tensor {
	if w.Rank() != 2 || t.Dim(-1) != w.shape[1] {
		panic(fmt.Sprintf("tensor: linear: input %v with weight %v", t.shape, w.shape))
	}
	rows := t.Numel() / t.Dim(-1)
	y := MatMulT(t.Reshape(rows, t.Dim(-1)), w, false, true)
	if bias != nil {
		y = y.Add(bias)
	}
	return y.Reshape(append(t.shape[:t.Rank()-1].Clone(), w.shape[0])...)
}
