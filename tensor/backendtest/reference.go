package backendtest

import (
	"math"
	"sort"
)

// Plain float64 references, written from the definitions and independent of any
// backend, for the forward checks.

func refMatMul(a, b []float64, m, n, k int, transA, transB bool) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for l := 0; l < k; l++ {
				av := a[i*k+l]
				if transA {
					av = a[l*m+i]
				}
				bv := b[l*n+j]
				if transB {
					bv = b[j*k+l]
				}
				s += av * bv
			}
			out[i*n+j] = s
		}
	}
	return out
}

func refConv2d(x, w, bias []float64, n, c, h, wd, o, kh, kw, stride, pad int) []float64 {
	oh, ow := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	out := make([]float64, n*o*oh*ow)
	for s := 0; s < n; s++ {
		for oc := 0; oc < o; oc++ {
			for y := 0; y < oh; y++ {
				for xx := 0; xx < ow; xx++ {
					acc := 0.0
					if bias != nil {
						acc = bias[oc]
					}
					for ic := 0; ic < c; ic++ {
						for ky := 0; ky < kh; ky++ {
							for kx := 0; kx < kw; kx++ {
								iy, ix := y*stride+ky-pad, xx*stride+kx-pad
								if iy >= 0 && iy < h && ix >= 0 && ix < wd {
									acc += x[((s*c+ic)*h+iy)*wd+ix] * w[((oc*c+ic)*kh+ky)*kw+kx]
								}
							}
						}
					}
					out[((s*o+oc)*oh+y)*ow+xx] = acc
				}
			}
		}
	}
	return out
}

// refNormalize normalizes groups of size `size` (biased variance), then applies
// gamma/beta indexed by affineIndex(i) when they are given.
func refNormalize(x []float64, size int, eps float64, gamma, beta []float64, affineIndex func(i int) int) []float64 {
	out := make([]float64, len(x))
	for g := 0; g < len(x)/size; g++ {
		seg := x[g*size : (g+1)*size]
		mean, vr := 0.0, 0.0
		for _, v := range seg {
			mean += v
		}
		mean /= float64(size)
		for _, v := range seg {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(size)
		for i, v := range seg {
			y := (v - mean) / math.Sqrt(vr+eps)
			j := g*size + i
			if gamma != nil {
				y = y*gamma[affineIndex(j)] + beta[affineIndex(j)]
			}
			out[j] = y
		}
	}
	return out
}

func refSoftmax(x []float64, cols int) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < len(x)/cols; r++ {
		s := 0.0
		for i := 0; i < cols; i++ {
			s += math.Exp(x[r*cols+i])
		}
		for i := 0; i < cols; i++ {
			out[r*cols+i] = math.Exp(x[r*cols+i]) / s
		}
	}
	return out
}

func refTopKMean(x, mask []float64, cols, k int) []float64 {
	rows := len(x) / cols
	out := make([]float64, rows)
	for r := 0; r < rows; r++ {
		v := make([]float64, cols)
		for i := range v {
			v[i] = x[r*cols+i]
			if mask != nil {
				v[i] *= mask[(r*cols+i)%len(mask)]
			}
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(v)))
		for _, t := range v[:k] {
			out[r] += t / float64(k)
		}
	}
	return out
}
