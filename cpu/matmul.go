package cpu

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/rfnet/rfnet-native/tensor"
)

// gemmSmall is the M·N·K below which one product runs on one goroutine and the
// batch is spread over cores instead (attention heads); above it gonum's GEMM
// spreads a single product over cores itself.
const gemmSmall = 1 << 21

// gemm computes c = op(a)·op(b) for row-major matrices through gonum's BLAS,
// which is parallel for large products.
func gemm[T float](transA, transB bool, m, n, k int, a, b, c []T) {
	ta, tb := blas.NoTrans, blas.NoTrans
	lda, ldb := k, n
	if transA {
		ta, lda = blas.Trans, m
	}
	if transB {
		tb, ldb = blas.Trans, k
	}
	switch c := any(c).(type) {
	case []float32:
		gonum.Implementation{}.Sgemm(ta, tb, m, n, k, 1, any(a).([]float32), max(lda, 1), any(b).([]float32), max(ldb, 1), 0, c, max(n, 1))
	case []float64:
		gonum.Implementation{}.Dgemm(ta, tb, m, n, k, 1, any(a).([]float64), max(lda, 1), any(b).([]float64), max(ldb, 1), 0, c, max(n, 1))
	}
}

func (kern[T]) matmul(ab, bb tensor.Buffer, p tensor.MatMulParams) tensor.Buffer {
	a, b := vals[T]("matmul", ab), vals[T]("matmul", bb)
	mn, mk, kn := p.M*p.N, p.M*p.K, p.K*p.N
	out := make([]T, p.Batch*mn)
	one := func(i int) {
		gemm(p.TransA, p.TransB, p.M, p.N, p.K,
			a[i*p.BatchStrideA:i*p.BatchStrideA+mk], b[i*p.BatchStrideB:i*p.BatchStrideB+kn], out[i*mn:(i+1)*mn])
	}
	if p.Batch > 1 && p.M*p.N*p.K < gemmSmall {
		parallelFor(p.Batch, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				one(i)
			}
		})
	} else {
		for i := 0; i < p.Batch; i++ {
			one(i)
		}
	}
	return wrap(out)
}

// linear is the product, then bias, then residual added, in the order the
// composed ops (MatMul, Add, Add) round: the CPU is the reference of the
// parity tests, and its results do not move with the fusion. (The CUDA
// backend writes bias + residual first and accumulates the product onto
// them, one pass fewer, rounding differently in the last place.)
func (kern[T]) linear(xb, wb, biasb, resb tensor.Buffer, p tensor.LinearParams) tensor.Buffer {
	x, w, bias, res := vals[T]("linear", xb), vals[T]("linear", wb), vals[T]("linear", biasb), vals[T]("linear", resb)
	out := make([]T, p.Rows*p.Out)
	gemm(false, true, p.Rows, p.Out, p.In, x, w, out)
	addAfter(out, res, bias, 1, p.Out)
	return wrap(out)
}

// addAfter adds bias[channel], then res, to out [n, channels, plane]; res and
// bias may be nil.
func addAfter[T float](out, res, bias []T, plane, channels int) {
	parallelFor(len(out)/plane, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := out[r*plane : (r+1)*plane]
			if bias != nil {
				b := bias[r%channels]
				for i := range row {
					row[i] += b
				}
			}
			if res != nil {
				for i, v := range res[r*plane : (r+1)*plane] {
					row[i] += v
				}
			}
		}
	})
}
