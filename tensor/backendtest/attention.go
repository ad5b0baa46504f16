package backendtest

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func testAttentionForward(t *testing.T, f forward) {
	for _, c := range []struct{ b, n, m, d int }{{2, 7, 5, 8}, {3, 64, 77, 40}, {1, 33, 33, 160}} {
		qv, q := f.host(23, c.b, c.n, c.d)
		kv, k := f.host(24, c.b, c.m, c.d)
		vv, v := f.host(25, c.b, c.m, c.d)
		scale := 1 / math.Sqrt(float64(c.d))
		var want []float64
		for i := 0; i < c.b; i++ {
			scores := refMatMul(qv[i*c.n*c.d:(i+1)*c.n*c.d], kv[i*c.m*c.d:(i+1)*c.m*c.d], c.n, c.m, c.d, false, true)
			for j := range scores {
				scores[j] *= scale
			}
			want = append(want, refMatMul(refSoftmax(scores, c.m), vv[i*c.m*c.d:(i+1)*c.m*c.d], c.n, c.d, c.m, false, false)...)
		}
		f.check(t, tensor.Attention(q, k, v, scale), tensor.Shape{c.b, c.n, c.d}, want)
	}
}
