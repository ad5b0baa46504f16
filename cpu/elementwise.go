package cpu

import (
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

const elemGrain = 1 << 14

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// unaryFunc and unaryDeriv give each UnaryOp and its derivative in float64.
var unaryFunc = [...]func(float64) float64{
	tensor.SiLU:      func(x float64) float64 { return x * sigmoid(x) },
	tensor.GELU:      gelu,
	tensor.QuickGELU: func(x float64) float64 { return x * sigmoid(1.702*x) },
	tensor.Sigmoid:   sigmoid,
	tensor.Exp:       math.Exp,
	tensor.Abs:       math.Abs,
	tensor.Square:    func(x float64) float64 { return x * x },
	tensor.Sqrt:      math.Sqrt,
}

var unaryDeriv = [...]func(float64) float64{
	// d/dx x·σ(x) = σ(x)·(1 + x·(1-σ(x)))
	tensor.SiLU: func(x float64) float64 { s := sigmoid(x); return s * (1 + x*(1-s)) },
	tensor.GELU: geluDeriv,
	// d/dx x·σ(ax) = σ(ax) + a·x·σ(ax)·(1-σ(ax))
	tensor.QuickGELU: func(x float64) float64 { s := sigmoid(1.702 * x); return s + 1.702*x*s*(1-s) },
	tensor.Sigmoid:   func(x float64) float64 { s := sigmoid(x); return s * (1 - s) },
	tensor.Exp:       math.Exp,
	tensor.Abs: func(x float64) float64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	},
	tensor.Square: func(x float64) float64 { return 2 * x },
	tensor.Sqrt:   func(x float64) float64 { return 0.5 / math.Sqrt(x) },
}

// gelu is x·Φ(x) with the exact normal CDF, as torch's default GELU.
func gelu(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

// geluDeriv is Φ(x) + x·φ(x).
func geluDeriv(x float64) float64 {
	return 0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-0.5*x*x)/math.Sqrt(2*math.Pi)
}

func (kern[T]) unary(op tensor.UnaryOp, xb tensor.Buffer) tensor.Buffer {
	x := vals[T](op.String(), xb)
	f := unaryFunc[op]
	y := make([]T, len(x))
	parallelFor(len(x), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = T(f(float64(x[i])))
		}
	})
	return wrap(y)
}

func (kern[T]) unaryBackward(op tensor.UnaryOp, xb, dyb tensor.Buffer) tensor.Buffer {
	x, dy := vals[T](op.String(), xb), vals[T](op.String(), dyb)
	f := unaryDeriv[op]
	dx := make([]T, len(x))
	parallelFor(len(x), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dx[i] = dy[i] * T(f(float64(x[i])))
		}
	})
	return wrap(dx)
}

func (kern[T]) affine(xb tensor.Buffer, a, b float64) tensor.Buffer {
	x := vals[T]("affine", xb)
	y := make([]T, len(x))
	ta, tb := T(a), T(b)
	parallelFor(len(x), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = ta*x[i] + tb
		}
	})
	return wrap(y)
}

func binaryFunc[T float](op tensor.BinaryOp) func(a, b T) T {
	switch op {
	case tensor.Add:
		return func(a, b T) T { return a + b }
	case tensor.Sub:
		return func(a, b T) T { return a - b }
	case tensor.Mul:
		return func(a, b T) T { return a * b }
	}
	return func(a, b T) T { return a / b }
}

// binary walks the output row by row (the last axis); each row's start in a and b
// comes from the outer index and the broadcast strides.
func (kern[T]) binary(op tensor.BinaryOp, ab, bb tensor.Buffer, bc tensor.Broadcast) tensor.Buffer {
	a, b := vals[T](op.String(), ab), vals[T](op.String(), bb)
	f := binaryFunc[T](op)
	n := bc.Shape.Numel()
	out := make([]T, n)
	r := len(bc.Shape)
	if r == 0 || (len(a) == n && len(b) == n) {
		parallelFor(n, elemGrain, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out[i] = f(a[i], b[i])
			}
		})
		return wrap(out)
	}
	inner := bc.Shape[r-1]
	sa, sb := bc.StrideA[r-1], bc.StrideB[r-1]
	rows := n / max(inner, 1)
	parallelFor(rows, max(1, elemGrain/max(inner, 1)), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			offA, offB, rem := 0, 0, row
			for ax := r - 2; ax >= 0; ax-- {
				i := rem % bc.Shape[ax]
				rem /= bc.Shape[ax]
				offA += i * bc.StrideA[ax]
				offB += i * bc.StrideB[ax]
			}
			o := out[row*inner : (row+1)*inner]
			for j := range o {
				o[j] = f(a[offA+j*sa], b[offB+j*sb])
			}
		}
	})
	return wrap(out)
}

// geglu: each row of x [rows, 2·cols] plus bias (nil: none) is [h | g]; y =
// h·GELU(g) (diffusers' GEGLU chunks the projection in this order). The sum
// is rounded to T first, as Add would round it.
func (kern[T]) geglu(xb, biasb tensor.Buffer, rows, cols int) tensor.Buffer {
	x, bias := vals[T]("geglu", xb), vals[T]("geglu", biasb)
	y := make([]T, rows*cols)
	parallelFor(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			h, g := x[2*r*cols:][:cols], x[(2*r+1)*cols:][:cols]
			dst := y[r*cols:][:cols]
			for i := range dst {
				hi, gi := biased(h[i], bias, i), biased(g[i], bias, cols+i)
				dst[i] = T(float64(hi) * gelu(float64(gi)))
			}
		}
	})
	return wrap(y)
}

func (kern[T]) gegluBackward(xb, biasb, dyb tensor.Buffer, rows, cols int) tensor.Buffer {
	x, bias, dy := vals[T]("geglu backward", xb), vals[T]("geglu backward", biasb), vals[T]("geglu backward", dyb)
	dx := make([]T, len(x))
	parallelFor(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			h, g := x[2*r*cols:][:cols], x[(2*r+1)*cols:][:cols]
			dh, dg := dx[2*r*cols:][:cols], dx[(2*r+1)*cols:][:cols]
			d := dy[r*cols:][:cols]
			for i := range d {
				hi, gi := float64(biased(h[i], bias, i)), float64(biased(g[i], bias, cols+i))
				dh[i] = T(float64(d[i]) * gelu(gi))
				dg[i] = T(float64(d[i]) * hi * geluDeriv(gi))
			}
		}
	})
	return wrap(dx)
}

// biased is v + bias[i] in T (v when there is no bias).
func biased[T float](v T, bias []T, i int) T {
	if bias == nil {
		return v
	}
	return v + bias[i]
}
