package backendtest

import (
	"fmt"
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func testGroupNormForward(t *testing.T, f forward) {
	xv, x := f.host(10, 2, 8, 3, 3)
	gv, g := f.host(11, 8)
	bv, bias := f.host(12, 8)
	want := refNormalize(xv, 4*9, 1e-5, gv, bv, func(i int) int { return (i / 9) % 8 })
	f.check(t, x.GroupNorm(2, g, bias, 1e-5), x.Shape(), want)
}

// testGroupNormSiLUForward checks the fused group norm + SiLU, with and
// without a shift [N, C] added first, against the float64 reference, and its
// output and gradients against the unfused ops (Add, GroupNorm, SiLU) on the
// same backend: groups of 1 to 5 channels, planes of 7 and 15 (no multiple
// of any Vec width), with and without gamma and beta.
func testGroupNormSiLUForward(t *testing.T, f forward) {
	for i, c := range []struct {
		shape              []int
		groups             int
		gamma, beta, shift bool
	}{
		{[]int{2, 12, 3, 5}, 3, true, true, false},  // 4 channels a group
		{[]int{1, 5, 7}, 1, true, true, false},      // one group of 5
		{[]int{2, 6, 1, 7}, 6, true, false, false},  // one channel a group, no beta
		{[]int{1, 4, 3, 5}, 2, false, false, false}, // no affine
		{[]int{2, 12, 3, 5}, 3, true, true, true},   // a time embedding added
		{[]int{2, 5, 7}, 1, false, false, true},
	} {
		name := fmt.Sprintf("%v/%d_groups/gamma=%v,beta=%v,shift=%v", c.shape, c.groups, c.gamma, c.beta, c.shift)
		t.Run(name, func(t *testing.T) {
			seed := uint64(100 + 4*i)
			xv, x := f.host(seed, c.shape...)
			n, ch := c.shape[0], c.shape[1]
			hw := x.Numel() / (n * ch)
			var gv, bv []float64
			var gamma, beta, shift *tensor.Tensor
			if c.gamma {
				gv, gamma = f.host(seed+1, ch)
				bv = make([]float64, ch)
			}
			if c.beta {
				bv, beta = f.host(seed+2, ch)
			}
			shifted := xv
			if c.shift {
				var sv []float64
				sv, shift = f.host(seed+3, n, ch)
				shifted = make([]float64, len(xv))
				for j, v := range xv {
					shifted[j] = v + sv[j/hw]
				}
			}
			want := refNormalize(shifted, ch/c.groups*hw, 1e-5, gv, bv, func(i int) int { return (i / hw) % ch })
			for i, z := range want {
				want[i] = z / (1 + math.Exp(-z))
			}
			f.check(t, x.AddGroupNormSiLU(shift, c.groups, gamma, beta, 1e-5), x.Shape(), want)

			// Input 1 is the shift (untracked and unused without one).
			wrt := []int{0}
			if c.shift {
				wrt = append(wrt, 1)
			}
			fused := gradCase{inputs: []*tensor.Tensor{x, shift}, wrt: wrt, f: func(in []*tensor.Tensor) *tensor.Tensor {
				return in[0].AddGroupNormSiLU(in[1], c.groups, gamma, beta, 1e-5)
			}}
			pair := fused
			pair.f = func(in []*tensor.Tensor) *tensor.Tensor {
				x := in[0]
				if in[1] != nil {
					planes := make([]int, len(c.shape))
					copy(planes, []int{n, ch})
					for j := 2; j < len(planes); j++ {
						planes[j] = 1
					}
					x = x.Add(in[1].Reshape(planes...))
				}
				return x.GroupNorm(c.groups, gamma, beta, 1e-5).SiLU()
			}
			r := Randn(f.b, f.d, seed+4, c.shape...)
			loss := func(out *tensor.Tensor) *tensor.Tensor { return out.Mul(r).Sum() }
			gotOut, gotGrads := fused.gradients(t, loss)
			wantOut, wantGrads := pair.gradients(t, loss)
			AssertClose(t, gotOut, wantOut, f.tol)
			for k := range wantGrads {
				AssertClose(t, gotGrads[k], wantGrads[k], f.tol)
			}
		})
	}
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
