package cpu

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// groupNorm: x [N, C, HW]; one (sample, group) is a contiguous run of
// C/Groups·HW elements. Statistics accumulate in float64.
func (kern[T]) groupNorm(xb, gammab, betab tensor.Buffer, p tensor.GroupNormParams) (tensor.Buffer, tensor.Buffer, tensor.Buffer) {
	x, gamma, beta := vals[T]("group_norm", xb), vals[T]("group_norm", gammab), vals[T]("group_norm", betab)
	cpg := p.C / p.Groups
	size := cpg * p.HW
	y := make([]T, len(x))
	mean := make([]T, p.N*p.Groups)
	rstd := make([]T, p.N*p.Groups)
	parallelFor(p.N*p.Groups, 1, func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			seg := x[ng*size : (ng+1)*size]
			mu, rs := moments(seg, p.Eps)
			mean[ng], rstd[ng] = T(mu), T(rs)
			g := ng % p.Groups
			for cl := 0; cl < cpg; cl++ {
				c := g*cpg + cl
				scale, shift := rs, -mu*rs
				if gamma != nil {
					scale, shift = scale*float64(gamma[c]), shift*float64(gamma[c])
				}
				if beta != nil {
					shift += float64(beta[c])
				}
				src := seg[cl*p.HW : (cl+1)*p.HW]
				dst := y[ng*size+cl*p.HW:][:p.HW]
				for i, v := range src {
					dst[i] = T(float64(v)*scale + shift)
				}
			}
		}
	})
	return wrap(y), wrap(mean), wrap(rstd)
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
// normalization group, where g = dy·gamma and x̂ = (x-μ)·rstd. gammaOf maps an
// element index in the group to its gamma (1 when there is none).
func normBackward[T float](x, dy, dx []T, mu, rs float64, gammaOf func(i int) float64) {
	var sg, sgx float64
	for i := range x {
		g := float64(dy[i]) * gammaOf(i)
		sg += g
		sgx += g * (float64(x[i]) - mu) * rs
	}
	n := float64(len(x))
	mg, mgx := sg/n, sgx/n
	for i := range x {
		g := float64(dy[i]) * gammaOf(i)
		xh := (float64(x[i]) - mu) * rs
		dx[i] = T(rs * (g - mg - xh*mgx))
	}
}

func (kern[T]) groupNormBackward(xb, dyb, meanb, rstdb, gammab tensor.Buffer, p tensor.GroupNormParams) tensor.Buffer {
	x, dy := vals[T]("group_norm backward", xb), vals[T]("group_norm backward", dyb)
	mean, rstd, gamma := vals[T]("group_norm backward", meanb), vals[T]("group_norm backward", rstdb), vals[T]("group_norm backward", gammab)
	cpg := p.C / p.Groups
	size := cpg * p.HW
	dx := make([]T, len(x))
	parallelFor(p.N*p.Groups, 1, func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			c0 := (ng % p.Groups) * cpg
			gammaOf := func(i int) float64 { return 1 }
			if gamma != nil {
				gammaOf = func(i int) float64 { return float64(gamma[c0+i/p.HW]) }
			}
			r := ng * size
			normBackward(x[r:r+size], dy[r:r+size], dx[r:r+size], float64(mean[ng]), float64(rstd[ng]), gammaOf)
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
	gammaOf := func(i int) float64 { return 1 }
	if gamma != nil {
		gammaOf = func(i int) float64 { return float64(gamma[i]) }
	}
	dx := make([]T, len(x))
	parallelFor(rows, 8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			s := r * cols
			normBackward(x[s:s+cols], dy[s:s+cols], dx[s:s+cols], float64(mean[r]), float64(rstd[r]), gammaOf)
		}
	})
	return wrap(dx)
}
