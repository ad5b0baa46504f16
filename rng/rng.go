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
// does. From 16 values on: n uniforms first, then Box-Muller over blocks of 16
// (the first 8 values of a block pair with the last 8); when n is not a
// multiple of 16, the last 16 values are drawn again from fresh uniforms.
// Below 16 values torch takes its scalar path instead (normalPair). torch's
// generator keeps that path's spare value for its next draw; here it lives
// only within one call. With an even count nothing is left over, so the two
// agree for SD's latents (4 channels) and every single draw of a fresh seed.
func (g *Torch) Randn(n int) []float32 {
	data := make([]float32, n)
	if n < 16 {
		var cached float64
		for i := range data {
			if i%2 == 1 {
				data[i] = float32(cached)
				continue
			}
			var v float64
			v, cached = g.normalPair()
			data[i] = float32(v)
		}
		return data
	}
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

// uniform64 is at::uniform_real_distribution<double>(0, 1): the low 53 bits of
// random64(), which joins two outputs as (first << 32) | second.
func (g *Torch) uniform64() float64 {
	hi := uint64(g.Uint32())
	lo := uint64(g.Uint32())
	return float64((hi<<32|lo)&(1<<53-1)) * 0x1p-53
}

// normalPair is at::normal_distribution<double>'s draw when nothing is cached
// (a small tensor's values come from it one at a time, in double precision,
// each cast to float32): r·cos θ, and r·sin θ, which the generator keeps for
// the next value. torch 1.13 computes r with log(1 - u2), as here; later
// releases use log1p(-u2), which differs below float32's precision.
func (g *Torch) normalPair() (cos, sin float64) {
	u1 := g.uniform64()
	u2 := g.uniform64()
	r := math.Sqrt(-2 * math.Log(1-u2))
	theta := 2 * math.Pi * u1
	return r * math.Cos(theta), r * math.Sin(theta)
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
