package cpu

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// attention computes each query row's scores, softmax and weighted sum in
// float64, one row at a time, so the N×M scores never exist at once. Row j
// of head h of batch entry b starts at (b·rows + j)·H·D + h·D (H = 1: heads
// split, one per entry; see tensor.AttentionParams).
func (kern[T]) attention(qb, kb, vb tensor.Buffer, p tensor.AttentionParams) tensor.Buffer {
	q, k, v := vals[T]("attention", qb), vals[T]("attention", kb), vals[T]("attention", vb)
	out := make([]T, p.Batch*p.N*p.D)
	h := p.HeadCount()
	at := func(entry, rows, j int) int { return ((entry/h*rows+j)*h + entry%h) * p.D }
	parallelFor(p.Batch*p.N, 16, func(lo, hi int) {
		s := make([]float64, p.M)
		acc := make([]float64, p.D)
		for r := lo; r < hi; r++ {
			b, n := r/p.N, r%p.N
			qr := q[at(b, p.N, n):][:p.D]
			mx := math.Inf(-1)
			for j := 0; j < p.M; j++ {
				dot := 0.0
				kr := k[at(b, p.M, j):][:p.D]
				for d, x := range qr {
					dot += float64(x) * float64(kr[d])
				}
				s[j] = dot * p.Scale
				mx = math.Max(mx, s[j])
			}
			clear(acc)
			sum := 0.0
			for j := 0; j < p.M; j++ {
				e := math.Exp(s[j] - mx)
				sum += e
				vr := v[at(b, p.M, j):][:p.D]
				for d := range acc {
					acc[d] += e * float64(vr[d])
				}
			}
			o := out[at(b, p.N, n):][:p.D]
			for d := range o {
				o[d] = T(acc[d] / sum)
			}
		}
	})
	return wrap(out)
}
