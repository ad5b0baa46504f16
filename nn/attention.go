package nn

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// ProbsHook receives attention probabilities [B, Heads, N, M] (queries N, keys M).
type ProbsHook func(probs *tensor.Tensor)

// Attention is multi-head attention with diffusers' parameter names (to_q,
// to_k, to_v, to_out.0). A self-attention layer (LoadSelfAttention) holds
// its three projections as one: QKV, the to_q, to_k and to_v weights stacked
// into [3·inner, C] (Q, K and V nil), so one GEMM reads x once and the
// attention reads its thirds in place.
type Attention struct {
	Q, K, V, Out *Linear
	QKV          *Linear
	Heads        int
	// Upcast computes the scores and softmax in float32 when the inputs are in
	// a 16-bit dtype (diffusers' upcast_attention / upcast_softmax).
	Upcast bool
}

// LoadAttention reads a cross-attention layer (queries from x, keys and
// values from a context); qkvBias is true in the VAE, false in the UNet.
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

// LoadSelfAttention reads a self-attention layer of width dim under the same
// names and stacks to_q, to_k and to_v into QKV once read; the three
// tensors are freed, so the weights are held once.
func LoadSelfAttention(w *weights.Source, dim, heads, headDim int, qkvBias bool) *Attention {
	a := LoadAttention(w, dim, dim, heads, headDim, qkvBias)
	a.QKV = &Linear{Weight: tensor.Concat(0, a.Q.Weight, a.K.Weight, a.V.Weight)}
	if qkvBias {
		a.QKV.Bias = tensor.Concat(0, a.Q.Bias, a.K.Bias, a.V.Bias)
	}
	for _, l := range []*Linear{a.Q, a.K, a.V} {
		l.Weight.Free()
		if l.Bias != nil {
			l.Bias.Free()
		}
	}
	a.Q, a.K, a.V = nil, nil, nil
	return a
}

// Forward attends from x [B, N, C] to context [B, M, Cctx] (x itself when nil)
// and hands the probabilities to hook when it is not nil. A self-attention
// layer takes no context.
func (a *Attention) Forward(x, context *tensor.Tensor, hook ProbsHook) *tensor.Tensor {
	return a.ForwardAdd(x, context, hook, nil)
}

// ForwardAdd is residual + Forward(x, context, hook), the residual (a
// transformer block's skip connection, nil for none) added where the output
// projection accumulates (Linear.ForwardAdd).
func (a *Attention) ForwardAdd(x, context *tensor.Tensor, hook ProbsHook, residual *tensor.Tensor) *tensor.Tensor {
	if a.QKV != nil {
		if context != nil {
			panic(fmt.Sprintf("nn: self-attention given a context %v", context.Shape()))
		}
		qkv := a.QKV.Forward(x) // [B, N, 3·inner]
		if hook == nil && !qkv.Tracked() {
			return a.project(tensor.AttentionQKV(qkv, a.Heads, a.scale(qkv.Dim(-1)/3)), residual)
		}
		inner := qkv.Dim(-1) / 3
		return a.attend(qkv.Narrow(-1, 0, inner), qkv.Narrow(-1, inner, inner), qkv.Narrow(-1, 2*inner, inner), hook, residual)
	}
	if context == nil {
		context = x
	}
	k, v := a.KeysValues(context)
	return a.ForwardKVAdd(x, k, v, hook, residual)
}

// KeysValues projects context [B, M, Cctx] into the keys and values [B, M,
// inner] of a cross-attention layer. A context that stays the same over many
// calls (the text over a generation) is projected once and handed to
// ForwardKV each time.
func (a *Attention) KeysValues(context *tensor.Tensor) (k, v *tensor.Tensor) {
	if a.QKV != nil {
		panic("nn: self-attention has no keys and values of a context")
	}
	return a.K.Forward(context), a.V.Forward(context)
}

// ForwardKV is Forward of a cross-attention layer with the keys and values
// of its context already projected (KeysValues).
func (a *Attention) ForwardKV(x, k, v *tensor.Tensor, hook ProbsHook) *tensor.Tensor {
	return a.ForwardKVAdd(x, k, v, hook, nil)
}

// ForwardKVAdd is residual + ForwardKV(x, k, v, hook), as in ForwardAdd.
func (a *Attention) ForwardKVAdd(x, k, v *tensor.Tensor, hook ProbsHook, residual *tensor.Tensor) *tensor.Tensor {
	return a.attend(a.Q.Forward(x), k, v, hook, residual)
}

// project is the output projection of the merged heads o, plus residual
// when it is not nil.
func (a *Attention) project(o, residual *tensor.Tensor) *tensor.Tensor {
	if residual == nil {
		return a.Out.Forward(o)
	}
	return a.Out.ForwardAdd(o, residual)
}

// scale is 1/√D for inner channels over the heads.
func (a *Attention) scale(inner int) float64 { return 1 / math.Sqrt(float64(inner/a.Heads)) }

// attend runs the attention of projected q [B, N, inner] and k, v [B, M,
// inner] and the output projection (plus residual, when not nil).
func (a *Attention) attend(q, k, v *tensor.Tensor, hook ProbsHook, residual *tensor.Tensor) *tensor.Tensor {
	scale := a.scale(q.Dim(-1))
	if hook == nil {
		// The fused attention reads the heads where the projections put
		// them: no split and merge permutes. Tracked inputs are fine: its
		// backward recomputes the probabilities (Upcast is moot there, the
		// fused kernels form the scores and softmax in float32 anyway).
		return a.project(tensor.AttentionHeads(q, k, v, a.Heads, scale), residual)
	}
	o := ScaledDotProduct(SplitHeads(q, a.Heads), SplitHeads(k, a.Heads), SplitHeads(v, a.Heads), nil, scale, a.Upcast, hook)
	return a.project(MergeHeads(o), residual)
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
