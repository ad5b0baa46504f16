package tensor

import (
	"fmt"
	"math"
)

// Embedding returns rows ids of table [vocab, dim] as [ids..., dim]. It is forward only.
func Embedding(table, ids *Tensor) *Tensor {
	if table.Rank() != 2 || ids.DType() != Int32 {
		panic(fmt.Sprintf("tensor: embedding: table %v, ids %v (%s)", table.shape, ids.shape, ids.DType()))
	}
	requireUntracked("embedding", table)
	dim := table.shape[1]
	return table.derive(table.b.Gather(table.buf, ids.buf, dim), append(ids.Shape(), dim))
}

// TimestepEmbedding is the sinusoidal embedding of diffusers' get_timestep_embedding:
// for i < dim/2, freq_i = exp(-ln(maxPeriod)·i/(dim/2 - shift)), and the row for
// timestep t is [sin(t·freq), cos(t·freq)], or [cos, sin] with flipSinToCos.
// It is forward only, computed on the host and uploaded as dtype d.
func TimestepEmbedding(b Backend, d DType, timesteps []float64, dim int, flipSinToCos bool, shift, maxPeriod float64) *Tensor {
	half := dim / 2
	out := make([]float64, len(timesteps)*dim)
	for r, ts := range timesteps {
		row := out[r*dim : (r+1)*dim]
		for i := 0; i < half; i++ {
			// Rounded to float32 at the same points as diffusers, which computes in
			// float32: at t≈1000 a float64 frequency moves the angle by ~1e-4.
			exponent := float32(-math.Log(maxPeriod)) * float32(i) / float32(float64(half)-shift)
			freq := float32(math.Exp(float64(exponent)))
			angle := float64(float32(ts) * freq)
			s, c := math.Sincos(angle)
			s, c = float64(float32(s)), float64(float32(c)) // float32 results, as diffusers has them
			if flipSinToCos {
				row[i], row[half+i] = c, s
			} else {
				row[i], row[half+i] = s, c
			}
		}
	}
	return FromFloat64(b, d, Shape{len(timesteps), dim}, out)
}
