package cpu

import (
	"fmt"
	"runtime"

	"github.com/rfnet/rfnet-native/tensor"
)

// Backend is the CPU backend. The zero value is ready to use.
type Backend struct{}

var (
	_ tensor.Backend        = (*Backend)(nil)
	_ tensor.MemoryReporter = (*Backend)(nil)
)

// New returns the CPU backend.
func New() *Backend { return &Backend{} }

// Name says "cpu" and the number of threads it uses.
func (*Backend) Name() string { return fmt.Sprintf("cpu (%d threads)", runtime.GOMAXPROCS(0)) }

// Computes reports true for Float32 and Float64.
func (*Backend) Computes(d tensor.DType) bool { return d == tensor.Float32 || d == tensor.Float64 }

// Sync returns nil: the CPU backend finishes every op before returning.
func (*Backend) Sync() error { return nil }

// ops is what kern[T] implements for one compute dtype.
type ops interface {
	unary(op tensor.UnaryOp, x tensor.Buffer) tensor.Buffer
	unaryBackward(op tensor.UnaryOp, x, dy tensor.Buffer) tensor.Buffer
	affine(x tensor.Buffer, a, b float64) tensor.Buffer
	binary(op tensor.BinaryOp, a, b tensor.Buffer, bc tensor.Broadcast) tensor.Buffer
	matmul(a, b tensor.Buffer, p tensor.MatMulParams) tensor.Buffer
	linear(x, w, bias, residual tensor.Buffer, p tensor.LinearParams) tensor.Buffer
	conv2d(x, w, bias, residual tensor.Buffer, p tensor.Conv2dParams) tensor.Buffer
	conv2dBackwardInput(dy, w tensor.Buffer, p tensor.Conv2dParams) tensor.Buffer
	groupNorm(x, shift, gamma, beta tensor.Buffer, p tensor.GroupNormParams) (y, mean, rstd tensor.Buffer)
	groupNormBackward(x, shift, dy, mean, rstd, gamma, beta tensor.Buffer, p tensor.GroupNormParams) tensor.Buffer
	layerNorm(x, gamma, beta tensor.Buffer, rows, cols int, eps float64) (y, mean, rstd tensor.Buffer)
	layerNormBackward(x, dy, mean, rstd, gamma tensor.Buffer, rows, cols int) tensor.Buffer
	softmax(x tensor.Buffer, rows, cols int) tensor.Buffer
	softmaxBackward(y, dy tensor.Buffer, rows, cols int) tensor.Buffer
	geglu(x, bias tensor.Buffer, rows, cols int) tensor.Buffer
	combine(coef, x tensor.Buffer, rows, k, n int) tensor.Buffer
	gegluBackward(x, bias, dy tensor.Buffer, rows, cols int) tensor.Buffer
	permute(x tensor.Buffer, shape tensor.Shape, perm []int) tensor.Buffer
	concat(xs []tensor.Buffer, outer int, inners []int) tensor.Buffer
	slice(x tensor.Buffer, outer, inner, start, size int) tensor.Buffer
	sliceBackward(dy tensor.Buffer, outer, inner, start, size int) tensor.Buffer
	reduceSum(x tensor.Buffer, outer, n, inner int) tensor.Buffer
	expand(x tensor.Buffer, outer, n, inner int) tensor.Buffer
	upsample2x(x tensor.Buffer, planes, h, w int) tensor.Buffer
	upsample2xBackward(dy tensor.Buffer, planes, h, w int) tensor.Buffer
	topKMean(x, mask tensor.Buffer, p tensor.TopKParams) (y, idx tensor.Buffer)
	topKMeanBackward(dy, idx, mask tensor.Buffer, p tensor.TopKParams) tensor.Buffer
	gather(table, ids tensor.Buffer, dim int) tensor.Buffer
	attention(q, k, v tensor.Buffer, p tensor.AttentionParams) tensor.Buffer
	attentionForward(q, k, v tensor.Buffer, p tensor.AttentionParams) (out, lse tensor.Buffer)
	attentionBackward(q, k, v, out, lse, dout tensor.Buffer, p tensor.AttentionParams) (dq, dk, dv tensor.Buffer)
}

// kern holds the loops for one compute dtype.
type kern[T float] struct{}

var (
	_ ops = kern[float32]{}
	_ ops = kern[float64]{}
)

// pick returns the loops for x's dtype.
func pick(op string, x tensor.Buffer) ops {
	switch x.DType() {
	case tensor.Float32:
		return kern[float32]{}
	case tensor.Float64:
		return kern[float64]{}
	}
	panic(fmt.Sprintf("cpu: %s: no arithmetic on %s (convert it to f32 first)", op, x.DType()))
}

func (*Backend) Unary(op tensor.UnaryOp, x tensor.Buffer) tensor.Buffer {
	return pick(op.String(), x).unary(op, x)
}
func (*Backend) UnaryBackward(op tensor.UnaryOp, x, dy tensor.Buffer) tensor.Buffer {
	return pick(op.String(), x).unaryBackward(op, x, dy)
}
func (*Backend) Affine(x tensor.Buffer, a, b float64) tensor.Buffer {
	return pick("affine", x).affine(x, a, b)
}
func (*Backend) Binary(op tensor.BinaryOp, a, b tensor.Buffer, bc tensor.Broadcast) tensor.Buffer {
	return pick(op.String(), a).binary(op, a, b, bc)
}
func (*Backend) MatMul(a, b tensor.Buffer, p tensor.MatMulParams) tensor.Buffer {
	return pick("matmul", a).matmul(a, b, p)
}
func (*Backend) Linear(x, w, bias, residual tensor.Buffer, p tensor.LinearParams) tensor.Buffer {
	return pick("linear", x).linear(x, w, bias, residual, p)
}
func (*Backend) Conv2d(x, w, bias, residual tensor.Buffer, p tensor.Conv2dParams) tensor.Buffer {
	return pick("conv2d", x).conv2d(x, w, bias, residual, p)
}
func (*Backend) Conv2dBackwardInput(dy, w tensor.Buffer, p tensor.Conv2dParams) tensor.Buffer {
	return pick("conv2d backward", dy).conv2dBackwardInput(dy, w, p)
}
func (*Backend) GroupNorm(x, shift, gamma, beta tensor.Buffer, p tensor.GroupNormParams) (y, mean, rstd tensor.Buffer) {
	return pick("group_norm", x).groupNorm(x, shift, gamma, beta, p)
}
func (*Backend) GroupNormBackward(x, shift, dy, mean, rstd, gamma, beta tensor.Buffer, p tensor.GroupNormParams) tensor.Buffer {
	return pick("group_norm backward", x).groupNormBackward(x, shift, dy, mean, rstd, gamma, beta, p)
}
func (*Backend) LayerNorm(x, gamma, beta tensor.Buffer, rows, cols int, eps float64) (y, mean, rstd tensor.Buffer) {
	return pick("layer_norm", x).layerNorm(x, gamma, beta, rows, cols, eps)
}
func (*Backend) LayerNormBackward(x, dy, mean, rstd, gamma tensor.Buffer, rows, cols int) tensor.Buffer {
	return pick("layer_norm backward", x).layerNormBackward(x, dy, mean, rstd, gamma, rows, cols)
}
func (*Backend) Softmax(x tensor.Buffer, rows, cols int) tensor.Buffer {
	return pick("softmax", x).softmax(x, rows, cols)
}
func (*Backend) SoftmaxBackward(y, dy tensor.Buffer, rows, cols int) tensor.Buffer {
	return pick("softmax backward", y).softmaxBackward(y, dy, rows, cols)
}
func (*Backend) Combine(coef, x tensor.Buffer, rows, k, n int) tensor.Buffer {
	return pick("combine", x).combine(coef, x, rows, k, n)
}
func (*Backend) GEGLU(x, bias tensor.Buffer, rows, cols int) tensor.Buffer {
	return pick("geglu", x).geglu(x, bias, rows, cols)
}
func (*Backend) GEGLUBackward(x, bias, dy tensor.Buffer, rows, cols int) tensor.Buffer {
	return pick("geglu backward", x).gegluBackward(x, bias, dy, rows, cols)
}
func (*Backend) Permute(x tensor.Buffer, shape tensor.Shape, perm []int) tensor.Buffer {
	return pick("permute", x).permute(x, shape, perm)
}
func (*Backend) Concat(xs []tensor.Buffer, outer int, inners []int) tensor.Buffer {
	return pick("concat", xs[0]).concat(xs, outer, inners)
}
func (*Backend) Slice(x tensor.Buffer, outer, inner, start, size int) tensor.Buffer {
	return pick("slice", x).slice(x, outer, inner, start, size)
}
func (*Backend) SliceBackward(dy tensor.Buffer, outer, inner, start, size int) tensor.Buffer {
	return pick("slice backward", dy).sliceBackward(dy, outer, inner, start, size)
}
func (*Backend) ReduceSum(x tensor.Buffer, outer, n, inner int) tensor.Buffer {
	return pick("reduce_sum", x).reduceSum(x, outer, n, inner)
}
func (*Backend) Expand(x tensor.Buffer, outer, n, inner int) tensor.Buffer {
	return pick("expand", x).expand(x, outer, n, inner)
}
func (*Backend) Upsample2x(x tensor.Buffer, planes, h, w int) tensor.Buffer {
	return pick("upsample2x", x).upsample2x(x, planes, h, w)
}
func (*Backend) Upsample2xBackward(dy tensor.Buffer, planes, h, w int) tensor.Buffer {
	return pick("upsample2x backward", dy).upsample2xBackward(dy, planes, h, w)
}
func (*Backend) TopKMean(x, mask tensor.Buffer, p tensor.TopKParams) (y, idx tensor.Buffer) {
	return pick("masked_topk_mean", x).topKMean(x, mask, p)
}
func (*Backend) TopKMeanBackward(dy, idx, mask tensor.Buffer, p tensor.TopKParams) tensor.Buffer {
	return pick("masked_topk_mean backward", dy).topKMeanBackward(dy, idx, mask, p)
}
func (*Backend) Gather(table, ids tensor.Buffer, dim int) tensor.Buffer {
	return pick("gather", table).gather(table, ids, dim)
}
func (*Backend) Attention(q, k, v tensor.Buffer, p tensor.AttentionParams) tensor.Buffer {
	return pick("attention", q).attention(q, k, v, p)
}
func (*Backend) AttentionForward(q, k, v tensor.Buffer, p tensor.AttentionParams) (out, lse tensor.Buffer) {
	return pick("attention", q).attentionForward(q, k, v, p)
}
func (*Backend) AttentionBackward(q, k, v, out, lse, dout tensor.Buffer, p tensor.AttentionParams) (dq, dk, dv tensor.Buffer) {
	return pick("attention backward", q).attentionBackward(q, k, v, out, lse, dout, p)
}
