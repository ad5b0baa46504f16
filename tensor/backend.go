package tensor

import (
	"errors"
	"fmt"
)

// ErrNoDevice is returned when a backend's device (a GPU, its driver) is not present.
var ErrNoDevice = errors.New("no device")

// ErrUnsupported is returned when a backend cannot run an op or dtype.
var ErrUnsupported = errors.New("unsupported")

// Buffer is a contiguous block of elements owned by one backend.
type Buffer interface {
	DType() DType
	// Len is the number of elements.
	Len() int
}

// UnaryOp names an elementwise function of one argument.
type UnaryOp uint8

const (
	// SiLU is x·σ(x).
	SiLU UnaryOp = iota
	// GELU is the exact (erf) GELU: x·Φ(x).
	GELU
	// QuickGELU is x·σ(1.702·x), the activation of OpenAI's CLIP.
	QuickGELU
	// Sigmoid is σ(x) = 1/(1+e^-x).
	Sigmoid
	// Exp is e^x.
	Exp
	// Abs is |x|; its derivative at 0 is taken as 0.
	Abs
	// Square is x².
	Square
	// Sqrt is √x.
	Sqrt
	numUnaryOps
)

var unaryNames = [...]string{SiLU: "silu", GELU: "gelu", QuickGELU: "quick_gelu", Sigmoid: "sigmoid", Exp: "exp", Abs: "abs", Square: "square", Sqrt: "sqrt"}

func (op UnaryOp) String() string { return unaryNames[op] }

// UnaryOps lists every UnaryOp, for tests.
func UnaryOps() []UnaryOp {
	ops := make([]UnaryOp, numUnaryOps)
	for i := range ops {
		ops[i] = UnaryOp(i)
	}
	return ops
}

// BinaryOp names an elementwise function of two arguments.
type BinaryOp uint8

const (
	// Add is a+b.
	Add BinaryOp = iota
	// Sub is a-b.
	Sub
	// Mul is a·b.
	Mul
	// Div is a/b.
	Div
)

var binaryNames = [...]string{Add: "add", Sub: "sub", Mul: "mul", Div: "div"}

func (op BinaryOp) String() string { return binaryNames[op] }

// Broadcast describes a binary op over an output of shape Shape: element i of the
// output reads a and b at the dot product of its index with StrideA and StrideB.
// A stride of 0 repeats that operand along the axis.
type Broadcast struct {
	Shape            Shape
	StrideA, StrideB []int
}

// MatMulParams describes Batch independent products out[i] = op(a[i])·op(b[i]),
// out[i] being M×N and the inner size K. With TransA, a[i] is stored K×M; with
// TransB, b[i] is stored N×K (the layout of a Linear weight). A batch stride of 0
// reuses the same matrix for every batch entry (a weight shared across the batch).
type MatMulParams struct {
	Batch, M, N, K             int
	TransA, TransB             bool
	BatchStrideA, BatchStrideB int
}

// LinearParams describes Rows independent rows of a linear layer with a
// residual: out [Rows, Out] = x [Rows, In]·wᵀ (w [Out, In]) + bias [Out] + residual [Rows, Out].
type LinearParams struct{ Rows, In, Out int }

// Conv2dParams describes a 2-D convolution of x [N, C, H, W] with w [O, C, KH, KW],
// the same stride and zero padding on both spatial axes.
type Conv2dParams struct {
	N, C, H, W  int
	O, KH, KW   int
	Stride, Pad int
}

// OutH is the output height.
func (p Conv2dParams) OutH() int { return (p.H+2*p.Pad-p.KH)/p.Stride + 1 }

// OutW is the output width.
func (p Conv2dParams) OutW() int { return (p.W+2*p.Pad-p.KW)/p.Stride + 1 }

// GroupNormParams describes a group norm of x [N, C, HW] with Groups groups of
// C/Groups channels; statistics are per (sample, group). With SiLU the op is
// the fused group norm + SiLU of every ResNet block: z = x̂·gamma + beta, then
// y = z·σ(z) applied as y is written (one pass over memory instead of two, and
// in a 16-bit dtype one rounding instead of two).
type GroupNormParams struct {
	N, C, HW, Groups int
	Eps              float64
	SiLU             bool
}

// TopKParams describes the masked top-k mean over the last axis of x [Rows, Cols]:
// y[r] = mean of the K largest entries of x[r,:]⊙mask[r mod MaskRows,:]. A nil mask
// means no masking (MaskRows is then ignored).
type TopKParams struct {
	Rows, Cols, K int
	MaskRows      int
}

// AttentionParams describes Batch independent attentions (batch × heads),
// out = softmax(Scale·q·kᵀ)·v. With Heads 0 or 1 the heads are split:
// queries [Batch, N, D], keys and values [Batch, M, D], out [Batch, N, D].
// With Heads > 1 they interleave in each row as the projections write them:
// queries [Batch/Heads, N, Heads·D], keys and values [Batch/Heads, M, Heads·D],
// out [Batch/Heads, N, Heads·D] (no permutes around the attention).
//
// The rows of q, k and v may be wider than their heads: with QStride > 0,
// q's heads are columns [QOffset, QOffset+Heads·D) of a row-major
// [Batch/Heads·N, QStride] buffer (likewise k and v over M rows), so the
// three thirds of one fused QKV projection [B, N, 3·Heads·D] are read in
// place (strides 3·Heads·D, offsets 0, Heads·D, 2·Heads·D). A stride of 0
// means packed rows (Heads·D) at offset 0. out is always packed.
type AttentionParams struct {
	Batch, N, M, D            int
	Heads                     int
	Scale                     float64
	QStride, KStride, VStride int
	QOffset, KOffset, VOffset int
}

// HeadCount is Heads, at least 1.
func (p AttentionParams) HeadCount() int { return max(p.Heads, 1) }

// Strides are the row strides of q, k and v (Heads·D where a stride is 0).
func (p AttentionParams) Strides() (q, k, v int) {
	packed := func(s int) int {
		if s == 0 {
			return p.HeadCount() * p.D
		}
		return s
	}
	return packed(p.QStride), packed(p.KStride), packed(p.VStride)
}

// Lens are the element counts q, k and v must have: (Batch/Heads)·rows
// rows of their stride. It panics when an operand's heads do not fit inside
// its rows (offset + Heads·D past the stride): a bug in the caller.
func (p AttentionParams) Lens() (q, k, v int) {
	h := p.HeadCount()
	qs, ks, vs := p.Strides()
	for _, o := range [][2]int{{p.QOffset, qs}, {p.KOffset, ks}, {p.VOffset, vs}} {
		if o[0] < 0 || o[0]+h*p.D > o[1] {
			panic(fmt.Sprintf("tensor: attention: %d heads of %d at offset %d in rows of %d", h, p.D, o[0], o[1]))
		}
	}
	entries := p.Batch / h
	return entries * p.N * qs, entries * p.M * ks, entries * p.M * vs
}

// Packed reports whether q, k and v are all packed (no strides, no offsets).
func (p AttentionParams) Packed() bool {
	q, k, v := p.Strides()
	w := p.HeadCount() * p.D
	return q == w && k == w && v == w && p.QOffset == 0 && p.KOffset == 0 && p.VOffset == 0
}

// Backend runs coarse ops on contiguous buffers. Each method documents shapes and
// layout; all sizes are explicit, and buffers are row-major. Outputs are new buffers.
// Float ops accept any float dtype the backend computes in (Float32 and Float64 on
// the CPU); all float inputs of one call share a dtype. A size mismatch is a bug in
// the caller and panics.
//
// Each family of ops has one name across the tree: its CUDA kernels are in
// kernels/NAME.cu, their launcher in cuda/NAME.go, the CPU loops that define the
// ops in cpu/NAME.go, and their checks in tensor/backendtest/NAME.go (the
// gradient cases of all ops share backendtest/grad_cases.go):
//
//	elementwise  Unary, UnaryBackward, Affine, Binary, GEGLU, GEGLUBackward
//	matmul       MatMul, Linear (its kernels keep the BLAS name, gemm_*)
//	conv         Conv2d, Conv2dBackwardInput (kernel files: conv.cu,
//	             conv_implicit.cu)
//	combine      Combine (a scheduler's step, guidance included, as one pass)
//	norm         GroupNorm, GroupNormBackward (both with an optional shift added
//	             to the input and an optional fused SiLU: GroupNormParams.SiLU),
//	             LayerNorm, LayerNormBackward
//	softmax      Softmax, SoftmaxBackward
//	layout       Permute, Concat, Slice, SliceBackward, Expand
//	reduce       ReduceSum
//	upsample     Upsample2x, Upsample2xBackward
//	topk         TopKMean, TopKMeanBackward
//	gather       Gather
//	attention    Attention, AttentionForward, AttentionBackward (kernel files:
//	             attention.cu, attention_fa2.cu, attention_fa2_bwd.cu)
//	memory       Alloc, FromFloat64, FromFloat32, FromInt32, FromRaw, Float64s,
//	             Float32s, Int32s, Convert, Free
//
// Name, Computes and Sync belong to the backend itself (cpu/backend.go,
// cuda/device.go). Backends may implement optional interfaces beside it:
// Scoper (tensor/scope.go, cuda/scope.go), Capturer (tensor/graph.go,
// cuda/graph.go: CUDA graphs, with CopyBuffer, the refill of a graph's
// inputs) and MemoryReporter; callers work without them.
type Backend interface {
	// Name is a short description ("cpu", "cuda:0 NVIDIA H100 ...").
	Name() string
	// Computes reports whether arithmetic runs in dtype d on this backend.
	Computes(d DType) bool

	// Alloc returns n zeroed elements.
	Alloc(d DType, n int) Buffer
	// FromFloat64 copies v into a new buffer of dtype d, rounding as needed.
	FromFloat64(d DType, v []float64) Buffer
	// FromFloat32 copies v into a new buffer of dtype d, rounding as needed.
	FromFloat32(d DType, v []float32) Buffer
	// FromInt32 copies v into a new Int32 buffer.
	FromInt32(v []int32) Buffer
	// FromRaw decodes little-endian elements of dtype src (a safetensors payload)
	// into a new buffer of dtype d.
	FromRaw(d DType, src DType, raw []byte) Buffer
	// Float64s copies a float buffer to the host.
	Float64s(x Buffer) []float64
	// Float32s copies a float buffer to the host.
	Float32s(x Buffer) []float32
	// Int32s copies an Int32 buffer to the host.
	Int32s(x Buffer) []int32
	// Convert returns x converted to dtype d.
	Convert(x Buffer, d DType) Buffer
	// Free releases x early; x must not be used afterwards. Backends with a
	// garbage-collected heap may ignore it.
	Free(x Buffer)
	// Sync waits for queued work and returns the first error any op hit since
	// the last Sync (asynchronous backends report kernel faults here).
	Sync() error

	// Unary returns op(x) elementwise.
	Unary(op UnaryOp, x Buffer) Buffer
	// UnaryBackward returns dy·op'(x) elementwise.
	UnaryBackward(op UnaryOp, x, dy Buffer) Buffer
	// Affine returns a·x + b elementwise.
	Affine(x Buffer, a, b float64) Buffer
	// Binary returns op(a, b) over bc.Shape.
	Binary(op BinaryOp, a, b Buffer, bc Broadcast) Buffer

	// MatMul returns the Batch products of p as one [Batch, M, N] buffer.
	MatMul(a, b Buffer, p MatMulParams) Buffer
	// Linear returns x·wᵀ + bias + residual as in LinearParams; bias and
	// residual may be nil. The sums are formed where the product is
	// accumulated (on a GPU: bias and residual written first, then a GEMM
	// adding onto them), saving the separate passes of a bias and a residual
	// add over the output.
	Linear(x, w, bias, residual Buffer, p LinearParams) Buffer
	// Conv2d returns x ⋆ w + bias + residual as [N, O, OutH, OutW]; bias [O]
	// and residual [N, O, OutH, OutW] may be nil (the residual added where the
	// product is accumulated, as in Linear).
	Conv2d(x, w, bias, residual Buffer, p Conv2dParams) Buffer
	// Conv2dBackwardInput returns dL/dx [N, C, H, W] for dy [N, O, OutH, OutW].
	Conv2dBackwardInput(dy, w Buffer, p Conv2dParams) Buffer

	// Combine returns rows linear combinations of the k rows of x [k, n]:
	// y[r, i] = Σ_j coef[r, j]·x[j, i], y [rows, n]. coef [rows, k] is in
	// CoefDType(x's dtype); each sum is accumulated in that dtype in j
	// order and rounded to x's dtype once. The coefficients are read from
	// the buffer when the op runs, so a recorded call (a CUDA graph) takes
	// new ones by a refill of coef.
	Combine(coef, x Buffer, rows, k, n int) Buffer

	// GroupNorm returns y = (x'-mean)·rstd·gamma + beta over x' = x + shift,
	// x [N, C, HW] and shift [N, C] repeated over HW (with p.SiLU, SiLU of
	// that), and the per-(sample, group) mean and 1/sqrt(var+eps) of x', each
	// [N, Groups]. shift (no shift), gamma and beta [C] (no affine) may be nil.
	GroupNorm(x, shift, gamma, beta Buffer, p GroupNormParams) (y, mean, rstd Buffer)
	// GroupNormBackward returns dL/dx' (which is dL/dx) from the forward's
	// saved statistics. With p.SiLU it first takes dy through the SiLU,
	// recomputing the norm's output from x, shift, the statistics, gamma and
	// beta (beta is read only then).
	GroupNormBackward(x, shift, dy, mean, rstd, gamma, beta Buffer, p GroupNormParams) Buffer
	// LayerNorm normalizes each row of x [rows, cols]; gamma and beta are [cols]
	// and may be nil. It returns y and the per-row mean and 1/sqrt(var+eps) [rows].
	LayerNorm(x, gamma, beta Buffer, rows, cols int, eps float64) (y, mean, rstd Buffer)
	// LayerNormBackward returns dL/dx from the forward's saved statistics.
	LayerNormBackward(x, dy, mean, rstd, gamma Buffer, rows, cols int) Buffer
	// Softmax normalizes each row of x [rows, cols].
	Softmax(x Buffer, rows, cols int) Buffer
	// SoftmaxBackward returns dL/dx = y·(dy - Σ dy·y) per row, from the forward's output y.
	SoftmaxBackward(y, dy Buffer, rows, cols int) Buffer
	// GEGLU adds bias [2·cols] (nil: none) to each row of x [rows, 2·cols],
	// rounding the sum to x's dtype, splits the row into halves h, g and
	// returns h·GELU(g) [rows, cols]: the feed-forward projection's bias
	// add and its gate in one pass.
	GEGLU(x, bias Buffer, rows, cols int) Buffer
	// GEGLUBackward returns dL/dx [rows, 2·cols] for dy [rows, cols] (the
	// gradient of x + bias: the bias is a constant).
	GEGLUBackward(x, bias, dy Buffer, rows, cols int) Buffer

	// Permute returns x of shape `shape` with its axes reordered: output axis i is input axis perm[i].
	Permute(x Buffer, shape Shape, perm []int) Buffer
	// Concat joins buffers laid out as [outer, inners[i]] into [outer, Σ inners].
	Concat(xs []Buffer, outer int, inners []int) Buffer
	// Slice copies columns [start, start+size) of x [outer, inner] into [outer, size].
	Slice(x Buffer, outer, inner, start, size int) Buffer
	// SliceBackward returns zeros [outer, inner] with dy [outer, size] at columns [start, start+size).
	SliceBackward(dy Buffer, outer, inner, start, size int) Buffer
	// ReduceSum sums x [outer, n, inner] over its middle axis into [outer, inner].
	ReduceSum(x Buffer, outer, n, inner int) Buffer
	// Expand repeats x [outer, inner] n times into [outer, n, inner].
	Expand(x Buffer, outer, n, inner int) Buffer
	// Upsample2x repeats each element of x [planes, h, w] into a 2×2 block: [planes, 2h, 2w].
	Upsample2x(x Buffer, planes, h, w int) Buffer
	// Upsample2xBackward sums each 2×2 block of dy [planes, 2h, 2w] into [planes, h, w].
	Upsample2xBackward(dy Buffer, planes, h, w int) Buffer
	// TopKMean returns y [Rows] as described by TopKParams and the positions it chose,
	// idx [Rows, K] (Int32). Ties go to the lower position.
	TopKMean(x, mask Buffer, p TopKParams) (y, idx Buffer)
	// TopKMeanBackward returns dL/dx [Rows, Cols] for dy [Rows].
	TopKMeanBackward(dy, idx, mask Buffer, p TopKParams) Buffer
	// Gather returns rows ids[i] of table [rows, dim] as [len(ids), dim] (embedding lookup).
	Gather(table, ids Buffer, dim int) Buffer
	// Attention returns softmax(scale·q·kᵀ)·v (layout in AttentionParams) without keeping the
	// N×M scores: the inference path.
	Attention(q, k, v Buffer, p AttentionParams) Buffer
	// AttentionForward is Attention that also returns each query row's log-sum-exp of the
	// scaled scores, lse[e, n] = log Σ_m exp(scale·q_n·k_m) for batch entry e (batch × heads,
	// in the order of AttentionParams.Batch) as [Batch, N] in float32 (float64 for float64
	// inputs): what AttentionBackward needs to recompute the probabilities.
	AttentionForward(q, k, v Buffer, p AttentionParams) (out, lse Buffer)
	// AttentionBackward returns dL/dq, dL/dk, dL/dv (the layouts of q, k, v) for dout = dL/dout,
	// from the forward's out and lse, without the N×M probabilities in memory:
	// P = exp(scale·q·kᵀ - lse), dv = Pᵀ·dout, dS = P∘(dout·vᵀ - rowsum(dout∘out)),
	// dq = scale·dS·k, dk = scale·dSᵀ·q.
	AttentionBackward(q, k, v, out, lse, dout Buffer, p AttentionParams) (dq, dk, dv Buffer)
}

// MemoryReporter is implemented by backends that can say how many bytes new
// buffers can still take (the host's available memory, a GPU's free memory
// and the allocator's cache), so a request that cannot fit is refused before
// the work starts.
type MemoryReporter interface {
	AvailableMemory() (int64, error)
}
