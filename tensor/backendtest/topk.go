package backendtest

import (
	"sort"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func testTopKMeanForward(t *testing.T, f forward) {
	xv, x := f.host(20, 6, 50)
	mv, m := f.host(21, 50)
	f.check(t, x.MaskedTopKMean(m, 10), tensor.Shape{6}, refTopKMean(xv, mv, 50, 10))
	f.check(t, x.MaskedTopKMean(nil, 1), tensor.Shape{6}, refTopKMean(xv, nil, 50, 1))
}

func refTopKMean(x, mask []float64, cols, k int) []float64 {
	rows := len(x) / cols
	out := make([]float64, rows)
	for r := 0; r < rows; r++ {
		v := make([]float64, cols)
		for i := range v {
			v[i] = x[r*cols+i]
			if mask != nil {
				v[i] *= mask[(r*cols+i)%len(mask)]
			}
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(v)))
		for _, t := range v[:k] {
			out[r] += t / float64(k)
		}
	}
	return out
}
