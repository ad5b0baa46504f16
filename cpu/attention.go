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
	out, _ := attentionRows[T](qb, kb, vb, p, false)
	return out
}

// attentionForward is attention that also returns each row's log-sum-exp
// max + log Σ exp(s - max) of the scaled scores s, in T.
func (kern[T]) attentionForward(qb, kb, vb tensor.Buffer, p tensor.AttentionParams) (tensor.Buffer, tensor.Buffer) {
	return attentionRows[T](qb, kb, vb, p, true)
}

// attentionRow returns the offset of row j of entry e's head in a packed
// buffer of `rows` rows per batch entry.
func attentionRow(p tensor.AttentionParams, e, rows, j int) int {
	h := p.HeadCount()
	return ((e/h*rows+j)*h + e%h) * p.D
}

func attentionRows[T float](qb, kb, vb tensor.Buffer, p tensor.AttentionParams, withLSE bool) (tensor.Buffer, tensor.Buffer) {
	q, k, v := vals[T]("attention", qb), vals[T]("attention", kb), vals[T]("attention", vb)
	if nq, nk, nv := p.Lens(); len(q) != nq || len(k) != nk || len(v) != nv {
		panic(fmt.Sprintf("cpu: attention: buffers of %d, %d, %d elements, want %d, %d, %d", len(q), len(k), len(v), nq, nk, nv))
	}
	out := make([]T, p.Batch*p.N*p.D)
	h := p.HeadCount()
	qs, ks, vs := p.Strides()
	at := func(off, stride, entry, rows, j int) int { return off + (entry/h*rows+j)*stride + entry%h*p.D }
	var lse []T
	if withLSE {
		lse = make([]T, p.Batch*p.N)
	}
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
			if withLSE {
				lse[r] = T(mx + math.Log(sum))
			}
		}
	})
	if !withLSE {
		return wrap(out), nil
	}
	return wrap(out), wrap(lse)
}

// attentionBackward is the definition of the fused backward, in float64 per
// batch entry (entries in parallel; each accumulates its own dk and dv): for
// each query row n, P = exp(s - lse[n]) with s the scaled scores,
// dv += Pᵀ·dout[n], dP = dout[n]·vᵀ, Di = Σ dout[n]∘out[n], dS = P∘(dP - Di),
// dq[n] = scale·dS·k and dk += scale·dSᵀ·q[n].
//
// The operands are packed (the tape's attention never reads a fused QKV in
// place: its q, k and v are Narrow copies).
func (kern[T]) attentionBackward(qb, kb, vb, ob, lseb, dob tensor.Buffer, p tensor.AttentionParams) (tensor.Buffer, tensor.Buffer, tensor.Buffer) {
	if !p.Packed() {
		panic("cpu: attention backward: strided operands (the backward takes packed q, k, v)")
	}
	q, k, v := vals[T]("attention backward", qb), vals[T]("attention backward", kb), vals[T]("attention backward", vb)
	o, lse, do := vals[T]("attention backward", ob), vals[T]("attention backward", lseb), vals[T]("attention backward", dob)
	dq := make([]T, len(q))
	dk, dv := make([]T, len(k)), make([]T, len(v))
	parallelFor(p.Batch, 1, func(lo, hi int) {
		ps, ds := make([]float64, p.M), make([]float64, p.M)
		accK, accV := make([]float64, p.M*p.D), make([]float64, p.M*p.D)
		accQ := make([]float64, p.D)
		for e := lo; e < hi; e++ {
			clear(accK)
			clear(accV)
			for n := 0; n < p.N; n++ {
				qr, dor, or := q[attentionRow(p, e, p.N, n):][:p.D], do[attentionRow(p, e, p.N, n):][:p.D], o[attentionRow(p, e, p.N, n):][:p.D]
				di := 0.0
				for d := range dor {
					di += float64(dor[d]) * float64(or[d])
				}
				l := float64(lse[e*p.N+n])
				for j := 0; j < p.M; j++ {
					kr, vr := k[attentionRow(p, e, p.M, j):][:p.D], v[attentionRow(p, e, p.M, j):][:p.D]
					s, dp := 0.0, 0.0
					for d := range qr {
						s += float64(qr[d]) * float64(kr[d])
						dp += float64(dor[d]) * float64(vr[d])
					}
					ps[j] = math.Exp(s*p.Scale - l)
					ds[j] = ps[j] * (dp - di)
				}
				clear(accQ)
				for j := 0; j < p.M; j++ {
					kr := k[attentionRow(p, e, p.M, j):][:p.D]
					ak, av := accK[j*p.D:][:p.D], accV[j*p.D:][:p.D]
					for d := range accQ {
						accQ[d] += ds[j] * float64(kr[d])
						ak[d] += ds[j] * float64(qr[d])
						av[d] += ps[j] * float64(dor[d])
					}
				}
				dqr := dq[attentionRow(p, e, p.N, n):][:p.D]
				for d := range dqr {
					dqr[d] = T(p.Scale * accQ[d])
				}
			}
			for j := 0; j < p.M; j++ {
				dkr, dvr := dk[attentionRow(p, e, p.M, j):][:p.D], dv[attentionRow(p, e, p.M, j):][:p.D]
				for d := range dkr {
					dkr[d] = T(p.Scale * accK[j*p.D+d])
					dvr[d] = T(accV[j*p.D+d])
				}
			}
		}
	})
	return wrap(dq), wrap(dk), wrap(dv)
}
