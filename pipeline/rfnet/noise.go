package rfnet

import (
	"math"

	"github.com/rfnet/rfnet-native/rng"
	"github.com/rfnet/rfnet-native/tensor"
)

// grid is a 2-D field of h×w cells, row-major: masks, attention maps and the
// channels of a latent, handled on the host (they are small).
type grid struct {
	h, w int
	v    []float64
}

func newGrid(h, w int) grid { return grid{h, w, make([]float64, h*w)} }

// noise draws torch.randn(shape, generator=manual_seed(seed)) as float64.
func noise(seed uint64, n int) []float64 {
	v := rng.NewTorch(seed).Randn(n)
	out := make([]float64, n)
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// FgSeedOffset is how far above the background seed the reference's batch
// script starts the foreground seeds.
const FgSeedOffset = 123456789

// WithSeed is c seeded as the reference's batch script seeds a run: the
// background from bg, the objects from bg + FgSeedOffset on.
func (c Config) WithSeed(bg uint64) Config {
	c.BgSeed, c.FgSeedStart = bg, bg+FgSeedOffset
	return c
}

// fgSeeds are the foreground seeds of the objects: start + j, moved by 12345
// where that equals the background seed (§6.1).
func fgSeeds(c Config, n int) []uint64 {
	s := make([]uint64, n)
	for j := range s {
		s[j] = c.FgSeedStart + uint64(j)
		if s[j] == c.BgSeed {
			s[j] += 12345
		}
	}
	return s
}

// objectNoise blends an object's own noise into the background noise inside
// its single-object box, keeping unit variance (§6.4):
// Z = Z_bg·(1-M) + (√(1-r)·Z_bg + √r·Z_fg)·M.
func objectNoise(bg []float64, seed uint64, box Box, ch, h, w int, ratio float64) []float64 {
	fg := noise(seed, len(bg))
	m := box.mask(h, w)
	out := make([]float64, len(bg))
	a, b := math.Sqrt(1-ratio), math.Sqrt(ratio)
	for c := 0; c < ch; c++ {
		for i := 0; i < h*w; i++ {
			k := c*h*w + i
			out[k] = bg[k]*(1-m[i]) + (a*bg[k]+b*fg[k])*m[i]
		}
	}
	return out
}

// toLatent wraps host values as a [1, ch, h, w] latent on b, scaled by sigma.
func toLatent(b tensor.Backend, d tensor.DType, v []float64, ch, h, w int, sigma float64) *tensor.Tensor {
	s := make([]float64, len(v))
	for i, x := range v {
		s[i] = x * sigma
	}
	return tensor.FromFloat64(b, d, tensor.Shape{1, ch, h, w}, s)
}
