package nn

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// ProbsHook receives attention probabilities [B, Heads, N, M] (queries N, keys M).
type ProbsHook func(probs *tensor.Tensor)

// Attention is multi-head attention with diffusers' parameter names (to_q, to_k,
// to_v, to_out.0). Context nil means self-attention.
type Attention struct {
	Q, K, V, Out *Linear
	Heads        int
	// Upcast computes the scores and softmax in float32 when the inputs are in
	// a 16-bit dtype (diffusers' upcast_attention / upcast_softmax).
	Upcast bool
}

// LoadAttention reads an attention layer; qkvBias is true in the VAE, false in the UNet.
func LoadAttention(w *weights.Source, queryDim, contextDim, heads, headDim int, qkvBias bool) *Attention {
	inner := heads * headDim
	return &Attention{
		Q:     LoadLinear(w.Sub("to_q"), queryDim, inner, qkvBias),
		K:     LoadLinear(w.Sub("to_k"), contextDim, inner, qkvBias),
		V:     LoadLinear(w.Sub("to_v"), contextDim, inner, qkvBias),
		Out:   LoadLinear(w.Sub("to_out", 0), inner, queryDim, true),
		Heads: heads,
	}
}

// Forward attends from x [B, N, C] to context [B, M, Cctx] (x itself when nil)
// and hands the probabilities to hook when it is not nil.
func (a *Attention) Forward(x, context *tensor.Tensor, hook ProbsHook) *tensor.Tensor {
	if context == nil {
		context = x
	}
	q, k, v := a.Q.Forward(x), a.K.Forward(context), a.V.Forward(context)
	scale := 1 / math.Sqrt(float64(q.Dim(-1)/a.Heads))
	if hook == nil {
		// The fused attention reads the heads where the projections put
		// them: no split and merge permutes. Tracked inputs are fine: its
		// backward recomputes the probabilities (Upcast is moot there, the
		// fused kernels form the scores and softmax in float32 anyway).
		return a.Out.Forward(tensor.AttentionHeads(q, k, v, a.Heads, scale))
	}
	o := ScaledDotProduct(SplitHeads(q, a.Heads), SplitHeads(k, a.Heads), SplitHeads(v, a.Heads), nil, scale, a.Upcast, hook)
	return a.Out.Forward(MergeHeads(o))
}

// SplitHeads turns [B, N, H·D] into [B, H, N, D].
func SplitHeads(x *tensor.Tensor, heads int) *tensor.Tensor {
	b, n, c := x.Dim(0), x.Dim(1), x.Dim(2)
	if c%heads != 0 {
		panic(fmt.Sprintf("nn: %d channels do not split into %d heads", c, heads))
	}
	return x.Reshape(b, n, heads, c/heads).Permute(0, 2, 1, 3)
}

// MergeHeads turns [B, H, N, D] into [B, N, H·D].
func MergeHeads(x *tensor.Tensor) *tensor.Tensor {
	b, h, n, d := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	return x.Permute(0, 2, 1, 3).Reshape(b, n, h*d)
}

// ScaledDotProduct returns softmax(scale·q·kᵀ + mask)·v for q [B, H, N, D] and
// k, v [B, H, M, D]; mask broadcasts to [B, H, N, M] and may be nil. When nobody
// reads the probabilities and there is no mask, the backend's fused attention
// runs (no N×M scores in memory), tracked inputs included: its backward
// recomputes the probabilities from the saved log-sum-exp, and upcast is moot
// (the fused kernels compute the scores and softmax in float32 anyway).
// Otherwise scores, softmax and the product are separate ops on the tape.
func ScaledDotProduct(q, k, v, mask *tensor.Tensor, scale float64, upcast bool, hook ProbsHook) *tensor.Tensor {
	if hook == nil && mask == nil {
		return tensor.Attention(q, k, v, scale)
	}
	dt := q.DType()
	if upcast && dt != tensor.Float32 && dt != tensor.Float64 {
		q, k = q.To(tensor.Float32), k.To(tensor.Float32)
	}
	scores := tensor.MatMulT(q, k, false, true).Scale(scale)
	if mask != nil {
		scores = scores.Add(mask.To(scores.DType()))
	}
	probs := scores.Softmax().To(dt)
	if hook != nil {
		hook(probs)
	}
	return probs.MatMul(v)
}
