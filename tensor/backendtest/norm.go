package backendtest

import (
	"math"
	"testing"
)

func testGroupNormForward(t *testing.T, f forward) {
	xv, x := f.host(10, 2, 8, 3, 3)
	gv, g := f.host(11, 8)
	bv, bias := f.host(12, 8)
	want := refNormalize(xv, 4*9, 1e-5, gv, bv, func(i int) int { return (i / 9) % 8 })
	f.check(t, x.GroupNorm(2, g, bias, 1e-5), x.Shape(), want)
}

func testLayerNormForward(t *testing.T, f forward) {
	xv, x := f.host(13, 5, 16)
	gv, g := f.host(14, 16)
	bv, bias := f.host(15, 16)
	want := refNormalize(xv, 16, 1e-5, gv, bv, func(i int) int { return i % 16 })
	f.check(t, x.LayerNorm(g, bias, 1e-5), x.Shape(), want)
}

// refNormalize normalizes groups of size `size` (biased variance), then applies
// gamma/beta indexed by affineIndex(i) when they are given.
func refNormalize(x []float64, size int, eps float64, gamma, beta []float64, affineIndex func(i int) int) []float64 {
	out := make([]float64, len(x))
	for g := 0; g < len(x)/size; g++ {
		seg := x[g*size : (g+1)*size]
		mean, vr := 0.0, 0.0
		for _, v := range seg {
			mean += v
		}
		mean /= float64(size)
		for _, v := range seg {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(size)
		for i, v := range seg {
			y := (v - mean) / math.Sqrt(vr+eps)
			j := g*size + i
			if gamma != nil {
				y = y*gamma[affineIndex(j)] + beta[affineIndex(j)]
			}
			out[j] = y
		}
	}
	return out
}
