package rfnet

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/llm"
)

// The worked numbers of §6.5.
func TestBoxVectors(t *testing.T) {
	for _, c := range []struct {
		llm      [4]float64
		centered Box
		so       [4]int
		overall  [3][4]int // at 64, 16, 8
	}{
		{[4]float64{340, 322, 150, 130}, Box{0.35352, 0.54609, 0.64648, 0.8}, [4]int{23, 35, 42, 51},
			[3][4]int{{42, 40, 61, 56}, {11, 10, 16, 14}, {5, 5, 7, 7}}},
		{[4]float64{20, 120, 312, 292}, Box{0.19531, 0.22969, 0.80469, 0.8}, [4]int{12, 15, 51, 51},
			[3][4]int{{2, 15, 41, 51}, {1, 4, 11, 13}, {0, 2, 5, 7}}},
	} {
		b := Box(llm.Object{Box: c.llm}.NormalizedBox())
		cb := b.centered(0.2)
		for i := range cb {
			if math.Abs(cb[i]-c.centered[i]) > 1e-5 {
				t.Fatalf("%v: centered %v, want %v", c.llm, cb, c.centered)
			}
		}
		if xa, ya, xb, yb := cb.raster(64, 64); [4]int{xa, ya, xb, yb} != c.so {
			t.Fatalf("%v: SO raster %v, want %v", c.llm, [4]int{xa, ya, xb, yb}, c.so)
		}
		for i, g := range []int{64, 16, 8} {
			if xa, ya, xb, yb := b.raster(g, g); [4]int{xa, ya, xb, yb} != c.overall[i] {
				t.Fatalf("%v: raster at %d: %v, want %v", c.llm, g, [4]int{xa, ya, xb, yb}, c.overall[i])
			}
		}
	}
}
