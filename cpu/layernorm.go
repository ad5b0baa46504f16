package cpu

import "github.com/rfnet/rfnet-native/tensor"

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
