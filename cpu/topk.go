package cpu

import (
	"cmp"
	"slices"

	"github.com/rfnet/rfnet-native/tensor"
)

// topKMean sorts each masked row's positions by value, descending, ties to the
// lower position (a stable order, so results do not depend on the sort).
func (kern[T]) topKMean(xb, maskb tensor.Buffer, p tensor.TopKParams) (tensor.Buffer, tensor.Buffer) {
	x, mask := vals[T]("masked_topk_mean", xb), vals[T]("masked_topk_mean", maskb)
	y := make([]T, p.Rows)
	idx := make([]int32, p.Rows*p.K)
	parallelFor(p.Rows, 1, func(lo, hi int) {
		v := make([]T, p.Cols)
		order := make([]int32, p.Cols)
		for r := lo; r < hi; r++ {
			copy(v, x[r*p.Cols:(r+1)*p.Cols])
			if mask != nil {
				m := mask[(r%p.MaskRows)*p.Cols:][:p.Cols]
				for i := range v {
					v[i] *= m[i]
				}
			}
			for i := range order {
				order[i] = int32(i)
			}
			slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(v[b], v[a]) })
			s := 0.0
			for _, i := range order[:p.K] {
				s += float64(v[i])
			}
			y[r] = T(s / float64(p.K))
			copy(idx[r*p.K:], order[:p.K])
		}
	})
	return wrap(y), &intBuf{idx}
}

func (kern[T]) topKMeanBackward(dyb, idxb, maskb tensor.Buffer, p tensor.TopKParams) tensor.Buffer {
	dy, idx, mask := vals[T]("masked_topk_mean backward", dyb), ints("masked_topk_mean backward", idxb), vals[T]("masked_topk_mean backward", maskb)
	dx := make([]T, p.Rows*p.Cols)
	inv := 1 / T(p.K)
	for r := 0; r < p.Rows; r++ {
		for _, i := range idx[r*p.K : (r+1)*p.K] {
			g := dy[r] * inv
			if mask != nil {
				g *= mask[(r%p.MaskRows)*p.Cols+int(i)]
			}
			dx[r*p.Cols+int(i)] += g
		}
	}
	return wrap(dx)
}
