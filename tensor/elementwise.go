package tensor

import "fmt"

func (t *Tensor) unary(op UnaryOp) *Tensor {
	out := t.derive(t.b.Unary(op, t.buf), t.shape)
	record(OpUnary, out, []*Tensor{t}, nil, op)
	return out
}

// SiLU returns x·σ(x).
func (t *Tensor) SiLU() *Tensor { return t.unary(SiLU) }

// GELU returns the exact (erf) GELU.
func (t *Tensor) GELU() *Tensor { return t.unary(GELU) }

// QuickGELU returns x·σ(1.702x).
func (t *Tensor) QuickGELU() *Tensor { return t.unary(QuickGELU) }

// Sigmoid returns 1/(1+e^-x).
func (t *Tensor) Sigmoid() *Tensor { return t.unary(Sigmoid) }

// Exp returns e^x.
func (t *Tensor) Exp() *Tensor { return t.unary(Exp) }

// Abs returns |x|.
func (t *Tensor) Abs() *Tensor { return t.unary(Abs) }

// Square returns x².
func (t *Tensor) Square() *Tensor { return t.unary(Square) }

// Sqrt returns √x.
func (t *Tensor) Sqrt() *Tensor { return t.unary(Sqrt) }

// Unary applies op; it is the generic form of SiLU, GELU, ...
func (t *Tensor) Unary(op UnaryOp) *Tensor { return t.unary(op) }

// Affine returns a·x + b.
func (t *Tensor) Affine(a, b float64) *Tensor {
	out := t.derive(t.b.Affine(t.buf, a, b), t.shape)
	record(OpAffine, out, []*Tensor{t}, nil, a)
	return out
}

// Scale returns s·x.
func (t *Tensor) Scale(s float64) *Tensor { return t.Affine(s, 0) }

// AddScalar returns x + s.
func (t *Tensor) AddScalar(s float64) *Tensor { return t.Affine(1, s) }

// Neg returns -x.
func (t *Tensor) Neg() *Tensor { return t.Affine(-1, 0) }

// Add returns t + o with NumPy broadcasting.
func (t *Tensor) Add(o *Tensor) *Tensor { return t.binary(Add, o) }

// Sub returns t - o with NumPy broadcasting.
func (t *Tensor) Sub(o *Tensor) *Tensor { return t.binary(Sub, o) }

// Mul returns t · o with NumPy broadcasting.
func (t *Tensor) Mul(o *Tensor) *Tensor { return t.binary(Mul, o) }

// Div returns t / o with NumPy broadcasting.
func (t *Tensor) Div(o *Tensor) *Tensor { return t.binary(Div, o) }

func (t *Tensor) binary(op BinaryOp, o *Tensor) *Tensor {
	if t.DType() != o.DType() {
		panic(fmt.Sprintf("tensor: %s: dtypes %s and %s", op, t.DType(), o.DType()))
	}
	shape, err := BroadcastShapes(t.shape, o.shape)
	if err != nil {
		panic(fmt.Sprintf("tensor: %s: %v", op, err))
	}
	bc := Broadcast{Shape: shape, StrideA: broadcastStrides(t.shape, shape), StrideB: broadcastStrides(o.shape, shape)}
	out := t.derive(t.b.Binary(op, t.buf, o.buf, bc), shape)
	record(OpBinary, out, []*Tensor{t, o}, nil, op)
	return out
}

// reduceTo sums g over the axes on which a tensor of shape s was broadcast to g's shape.
func reduceTo(g *Tensor, s Shape) *Tensor {
	if g.shape.Equal(s) {
		return g
	}
	off := len(g.shape) - len(s)
	for i := len(g.shape) - 1; i >= 0; i-- {
		if j := i - off; g.shape[i] != 1 && (j < 0 || s[j] == 1) {
			g = g.sumAxis(i, true)
		}
	}
	return g.Reshape(s...)
}
