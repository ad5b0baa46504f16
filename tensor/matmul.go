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

// LinearAdd is residual + Linear(w, bias), residual of the output's shape: a
// transformer block's skip connection. Untracked, the backend adds bias and
// residual where it accumulates the product (Backend.Linear: one pass over
// the output instead of the bias's and the residual's); on the tape it is
// Linear and an Add.
func (t *Tensor) LinearAdd(w, bias, residual *Tensor) *Tensor {
	if t.Tracked() || residual.Tracked() {
		return t.Linear(w, bias).Add(residual)
	}
	if w.Rank() != 2 || t.Dim(-1) != w.shape[1] {
		panic(fmt.Sprintf("tensor: linear: input %v with weight %v", t.shape, w.shape))
	}
	if bias != nil && (bias.Rank() != 1 || bias.shape[0] != w.shape[0]) {
		panic(fmt.Sprintf("tensor: linear: bias %v for weight %v", bias.shape, w.shape))
	}
	shape := append(t.shape[:t.Rank()-1].Clone(), w.shape[0])
	if !residual.shape.Equal(shape) || residual.DType() != t.DType() || w.DType() != t.DType() {
		panic(fmt.Sprintf("tensor: linear: residual %v %s for output %v %s (weight %s)", residual.shape, residual.DType(), shape, t.DType(), w.DType()))
	}
	requireUntracked("linear", w, bias)
	var bb Buffer
	if bias != nil {
		bb = bias.buf
	}
	p := LinearParams{Rows: t.Numel() / t.Dim(-1), In: t.Dim(-1), Out: w.shape[0]}
	return t.derive(t.b.Linear(t.buf, w.buf, bb, residual.buf, p), shape)
}
