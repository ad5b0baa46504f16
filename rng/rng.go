// Package rng reproduces PyTorch's CPU random number generator (torch.Generator
// on the CPU: MT19937) and its torch.randn for float32, so a seed gives the same
// initial noise here as in diffusers on the CPU. The RFNet reference draws all
// its noise this way (one background noise, then foreground noises per object).
package rng

import "math"

// Torch is torch's CPU generator (mt19937 seeded as torch.manual_seed does).
type Torch struct {
	state [624]uint32
	index int
}

// NewTorch returns the generator torch.Generator().manual_seed(seed) makes.
func NewTorch(seed uint64) *Torch {
	g := &Torch{index: 624}
	g.state[0] = uint32(seed)
	for i := 1; i < 624; i++ {
		prev := g.state[i-1]
		g.state[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	return g
}

// Uint32 is the next output of the Mersenne twister.
func (g *Torch) Uint32() uint32 {
	if g.index >= 624 {
		g.twist()
	}
	y := g.state[g.index]
	g.index++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

func (g *Torch) twist() {
	const upper, lower, matrix = 0x80000000, 0x7fffffff, 0x9908b0df
	for i := 0; i < 624; i++ {
		y := (g.state[i] & upper) | (g.state[(i+1)%624] & lower)
		next := g.state[(i+397)%624] ^ (y >> 1)
		if y&1 != 0 {
			next ^= matrix
		}
		g.state[i] = next
	}
	g.index = 0
}

// uniform32 is at::uniform_real_distribution<float>(0, 1): 24 random bits.
func (g *Torch) uniform32() float32 {
	return float32(float64(g.Uint32()&(1<<24-1)) * 0x1p-24)
}

// Randn returns n standard normal float32 values as torch.randn(n) on the CPU
// does: n uniforms first, then Box-Muller over blocks of 16 (the first 8 values of
// a block pair with the last 8); when n is not a multiple of 16, the last 16
// values are drawn again from fresh uniforms. Fewer than 16 values take torch's
// scalar path, which this does not reproduce; callers ask for latents (≥ 16).
func (g *Torch) Randn(n int) []float32 {
	if n < 16 {
		panic("rng: Randn needs at least 16 values (torch uses another algorithm below that)")
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = g.uniform32()
	}
	for i := 0; i+16 <= n; i += 16 {
		boxMuller16(data[i : i+16])
	}
	if n%16 != 0 {
		tail := data[n-16:]
		for i := range tail {
			tail[i] = g.uniform32()
		}
		boxMuller16(tail)
	}
	return data
}

// boxMuller16 is torch's normal_fill_16 with mean 0 and std 1.
func boxMuller16(d []float32) {
	for j := 0; j < 8; j++ {
		u1 := 1 - d[j] // [0,1) -> (0,1] for the log
		u2 := d[j+8]
		radius := float32(math.Sqrt(float64(-2 * float32(math.Log(float64(u1))))))
		theta := 2 * math.Pi * float64(u2)
		d[j] = float32(float64(radius) * math.Cos(theta))
		d[j+8] = float32(float64(radius) * math.Sin(theta))
	}
}
