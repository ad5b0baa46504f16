//go:build cuda

package cuda_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// TopKMean picks the positions its CPU twin picks, in the same order, on
// random non-zero values: rows that topk_mean sorts in shared memory and rows
// past it that topk_mean_global sorts in device memory. The CPU ranks the
// GPU's values in float32, where the GPU forms the masked products, so both
// rank the same numbers and a near tie cannot order them differently.
func TestTopKMeanMatchesCPU(t *testing.T) {
	g, c := device(t), cpu.New()
	for _, d := range computeDTypes {
		for _, tc := range []struct{ rows, cols, k, maskRows int }{
			{5, 77, 7, 1},      // one mask for every row
			{4, 4096, 100, 4},  // the longest row sorted in shared memory, a mask per row
			{3, 4097, 1, 0},    // one past it, no mask
			{2, 5000, 5000, 2}, // every position chosen
			{2, 9216, 922, 1},  // SD 2.1's 96×96 maps at 768², top 10%
		} {
			t.Run(fmt.Sprintf("%s/%dx%d_k%d_masks%d", d, tc.rows, tc.cols, tc.k, tc.maskRows), func(t *testing.T) {
				p := tensor.TopKParams{Rows: tc.rows, Cols: tc.cols, K: tc.k, MaskRows: tc.maskRows}
				x := g.FromFloat64(d, backendtest.RandnValues(1, tc.rows*tc.cols))
				var mask, cmask tensor.Buffer
				if tc.maskRows > 0 {
					m := backendtest.RandnValues(2, tc.maskRows*tc.cols)
					for i := range m {
						m[i] = math.Abs(m[i])
					}
					mask = g.FromFloat64(d, m)
					cmask = c.FromFloat32(tensor.Float32, g.Float32s(mask))
				}
				y, idx := g.TopKMean(x, mask, p)
				wantY, wantIdx := c.TopKMean(c.FromFloat32(tensor.Float32, g.Float32s(x)), cmask, p)
				syncOK(t, g)
				got, want := g.Int32s(idx), c.Int32s(wantIdx)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("row %d, rank %d: position %d, want %d", i/tc.k, i%tc.k, got[i], want[i])
					}
				}
				backendtest.AssertCloseValues(t, g.Float64s(y), c.Float64s(wantY), fixtures.GPUOpTol(d))
			})
		}
	}
}
