package cpu

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// attention computes each query row's scores, softmax and weighted sum in
// float64, one row at a time, so the N×M scores never exist at once. Row j
// of head h of batch entry b of an operand with row stride S and offset O
// starts at O + (b·rows + j)·S + h·D (H = 1: heads split, one per entry; out
// is packed, S = H·D; see tensor.AttentionParams).
func (kern[T]) attention(qb, kb, vb tensor.Buffer, p tensor.AttentionParams) tensor.Buffer {
	q, k, v := vals[T]("attention", qb), vals[T]("attention", kb), vals[T]("attention", vb)
	if nq, nk, nv := p.Lens(); len(q) != nq || len(k) != nk || len(v) != nv {
		panic(fmt.Sprintf("cpu: attention: buffers of %d, %d, %d elements, want %d, %d, %d", len(q), len(k), len(v), nq, nk, nv))
	}
	out := make([]T, p.Batch*p.N*p.D)
	h := p.HeadCount()
	qs, ks, vs := p.Strides()
	at := func(off, stride, entry, rows, j int) int { return off + (entry/h*rows+j)*stride + entry%h*p.D }
	parallelFor(p.Batch*p.N, 16, func(lo, hi int) {
		s := make([]float64, p.M)
		acc := make([]float64, p.D)
		for r := lo; r < hi; r++ {
			b, n := r/p.N, r%p.N
			qr := q[at(p.QOffset, qs, b, p.N, n):][:p.D]
			mx := math.Inf(-1)
			for j := 0; j < p.M; j++ {
				dot := 0.0
				kr := k[at(p.KOffset, ks, b, p.M, j):][:p.D]
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
				vr := v[at(p.VOffset, vs, b, p.M, j):][:p.D]
				for d := range acc {
					acc[d] += e * float64(vr[d])
				}
			}
			o := out[at(0, h*p.D, b, p.N, n):][:p.D]
			for d := range o {
				o[d] = T(acc[d] / sum)
			}
		}
	})
	return wrap(out)
}
