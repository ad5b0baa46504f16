package cpu

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// groupNorm: x [N, C, HW], plus shift [N, C] on every plane when there is
// one; one (sample, group) is a contiguous run of C/Groups·HW elements.
// Statistics accumulate in float64; with p.SiLU the SiLU is applied to the
// float64 norm output before it is stored.
func (kern[T]) groupNorm(xb, shiftb, gammab, betab tensor.Buffer, p tensor.GroupNormParams) (tensor.Buffer, tensor.Buffer, tensor.Buffer) {
	const op = "group_norm"
	x, sh, gamma, beta := vals[T](op, xb), vals[T](op, shiftb), vals[T](op, gammab), vals[T](op, betab)
	cpg := p.C / p.Groups
	size := cpg * p.HW
	y := make([]T, len(x))
	mean := make([]T, p.N*p.Groups)
	rstd := make([]T, p.N*p.Groups)
	silu := unaryFunc[tensor.SiLU]
	parallelFor(p.N*p.Groups, 1, func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			seg := shiftedRun(x, sh, ng, cpg, p.HW)
			mu, rs := moments(seg, p.Eps)
			mean[ng], rstd[ng] = T(mu), T(rs)
			g := ng % p.Groups
			for cl := 0; cl < cpg; cl++ {
				c := g*cpg + cl
				a, b := rs, -mu*rs
				if gamma != nil {
					a, b = a*float64(gamma[c]), b*float64(gamma[c])
				}
				if beta != nil {
					b += float64(beta[c])
				}
				src := seg[cl*p.HW : (cl+1)*p.HW]
				dst := y[ng*size+cl*p.HW:][:p.HW]
				for i, v := range src {
					z := v*a + b
					if p.SiLU {
						z = silu(z)
					}
					dst[i] = T(z)
				}
			}
		}
	})
	return wrap(y), wrap(mean), wrap(rstd)
}

// shiftedRun returns run ng of x (cpg planes of hw) in float64, plane i
// moved by shift[ng·cpg + i] when there is a shift [N, C] (the run's
// channels are those of one sample, and consecutive).
func shiftedRun[T float](x, shift []T, ng, cpg, hw int) []float64 {
	size := cpg * hw
	run := make([]float64, size)
	for i, v := range x[ng*size : (ng+1)*size] {
		run[i] = float64(v)
		if shift != nil {
			run[i] += float64(shift[ng*cpg+i/hw])
		}
	}
	return run
}

// moments returns the mean and 1/sqrt(biased variance + eps) of v, two-pass in float64.
func moments[T float](v []T, eps float64) (mean, rstd float64) {
	s := 0.0
	for _, x := range v {
		s += float64(x)
	}
	mean = s / float64(len(v))
	ss := 0.0
	for _, x := range v {
		d := float64(x) - mean
		ss += d * d
	}
	return mean, 1 / math.Sqrt(ss/float64(len(v))+eps)
}

// normBackward applies dx = rstd·(g - mean(g) - x̂·mean(g·x̂)) over one
// normalization group, where x̂ = (x-μ)·rstd and g(i) is dL/dx̂ at element i
// of the group (dy·gamma, or more when an activation follows the norm).
func normBackward[X, T float](x []X, dx []T, mu, rs float64, g func(i int) float64) {
	var sg, sgx float64
	for i := range x {
		gi := g(i)
		sg += gi
		sgx += gi * (float64(x[i]) - mu) * rs
	}
	n := float64(len(x))
	mg, mgx := sg/n, sgx/n
	for i := range x {
		xh := (float64(x[i]) - mu) * rs
		dx[i] = T(rs * (g(i) - mg - xh*mgx))
	}
}

// groupNormBackward: with p.SiLU, dy is first taken through the SiLU at
// z = x̂·gamma + beta, recomputed from x, shift and the statistics.
func (kern[T]) groupNormBackward(xb, shiftb, dyb, meanb, rstdb, gammab, betab tensor.Buffer, p tensor.GroupNormParams) tensor.Buffer {
	const op = "group_norm backward"
	x, sh, dy := vals[T](op, xb), vals[T](op, shiftb), vals[T](op, dyb)
	mean, rstd, gamma, beta := vals[T](op, meanb), vals[T](op, rstdb), vals[T](op, gammab), vals[T](op, betab)
	siluDeriv := unaryDeriv[tensor.SiLU]
	cpg := p.C / p.Groups
	size := cpg * p.HW
	dx := make([]T, len(x))
	parallelFor(p.N*p.Groups, 1, func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			r, c0 := ng*size, (ng%p.Groups)*cpg
			mu, rs := float64(mean[ng]), float64(rstd[ng])
			seg, dseg := shiftedRun(x, sh, ng, cpg, p.HW), dy[r:r+size]
			g := func(i int) float64 {
				gi, z := float64(dseg[i]), (seg[i]-mu)*rs
				if gamma != nil {
					gi, z = gi*float64(gamma[c0+i/p.HW]), z*float64(gamma[c0+i/p.HW])
				}
				if p.SiLU {
					if beta != nil {
						z += float64(beta[c0+i/p.HW])
					}
					gi *= siluDeriv(z)
				}
				return gi
			}
			normBackward(seg, dx[r:r+size], mu, rs, g)
		}
	})
	return wrap(dx)
}

// layerNorm normalizes each row of x [rows, cols] with float64 statistics.
func (kern[T]) layerNorm(xb, gammab, betab tensor.Buffer, rows, cols int, eps float64) (tensor.Buffer, tensor.Buffer, tensor.Buffer) {
	x, gamma, beta := vals[T]("layer_norm", xb), vals[T]("layer_norm", gammab), vals[T]("layer_norm", betab)
	y := make([]T, len(x))
	mean, rstd := make([]T, rows), make([]T, rows)
	parallelFor(rows, 8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src, dst := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
			mu, rs := moments(src, eps)
			mean[r], rstd[r] = T(mu), T(rs)
			for i, v := range src {
				o := (float64(v) - mu) * rs
				if gamma != nil {
					o *= float64(gamma[i])
				}
				if beta != nil {
					o += float64(beta[i])
				}
				dst[i] = T(o)
			}
		}
	})
	return wrap(y), wrap(mean), wrap(rstd)
}

func (kern[T]) layerNormBackward(xb, dyb, meanb, rstdb, gammab tensor.Buffer, rows, cols int) tensor.Buffer {
	x, dy := vals[T]("layer_norm backward", xb), vals[T]("layer_norm backward", dyb)
	mean, rstd, gamma := vals[T]("layer_norm backward", meanb), vals[T]("layer_norm backward", rstdb), vals[T]("layer_norm backward", gammab)
	dx := make([]T, len(x))
	parallelFor(rows, 8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			s := r * cols
			drow := dy[s : s+cols]
			g := func(i int) float64 {
				if gamma != nil {
					return float64(drow[i]) * float64(gamma[i])
				}
				return float64(drow[i])
			}
			normBackward(x[s:s+cols], dx[s:s+cols], float64(mean[r]), float64(rstd[r]), g)
		}
	})
	return wrap(dx)
}
