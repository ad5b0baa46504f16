package tensor

import "fmt"

// MaskedTopKMean returns, for each row of the last axis, the mean of the k largest
// entries of x⊙mask, shape [...] (the last axis removed). mask is nil, [Cols]
// (shared by all rows) or of x's shape. It is the top-k term of the RFNet box loss:
// the top-k runs over every position, so masked-out positions count as zeros.
func (t *Tensor) MaskedTopKMean(mask *Tensor, k int) *Tensor {
	cols := t.Dim(-1)
	rows := t.Numel() / cols
	if k < 1 || k > cols {
		panic(fmt.Sprintf("tensor: masked_topk_mean: k=%d for rows of %d", k, cols))
	}
	p := TopKParams{Rows: rows, Cols: cols, K: k, MaskRows: 1}
	if mask != nil {
		requireUntracked("masked_topk_mean (mask)", mask)
		switch {
		case mask.Numel() == cols:
		case mask.shape.Equal(t.shape):
			p.MaskRows = rows
		default:
			panic(fmt.Sprintf("tensor: masked_topk_mean: mask %v for input %v", mask.shape, t.shape))
		}
	}
	y, idx := t.b.TopKMean(t.buf, bufOf(mask), p)
	out := t.derive(y, t.shape[:t.Rank()-1])
	record(OpTopKMean, out, []*Tensor{t, mask}, []*Tensor{t.derive(idx, Shape{rows, k})}, p)
	return out
}
