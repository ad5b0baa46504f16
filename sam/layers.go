package sam

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// relu is max(x, 0), composed as (x + |x|)/2: exact for finite x (the sum is 2x or
// 0, and halving is exact), so no backend needs a ReLU op for SAM's few MLPs.
func relu(x *tensor.Tensor) *tensor.Tensor { return x.Add(x.Abs()).Scale(0.5) }

// FeedForward is transformers' SamFeedForward, the original MLP class: proj_in,
// NumLayers-2 hidden layers ("layers.i"), proj_out, with ReLU between them.
type FeedForward struct {
	ProjIn  *nn.Linear
	Layers  []*nn.Linear
	ProjOut *nn.Linear
}

func loadFeedForward(w *weights.Source, in, hidden, out, depth int) *FeedForward {
	f := &FeedForward{ProjIn: nn.LoadLinear(w.Sub("proj_in"), in, hidden, true),
		ProjOut: nn.LoadLinear(w.Sub("proj_out"), hidden, out, true)}
	for i := 0; i < depth-2; i++ {
		f.Layers = append(f.Layers, nn.LoadLinear(w.Sub("layers", i), hidden, hidden, true))
	}
	return f
}

// Forward applies the MLP to the last axis of x.
func (f *FeedForward) Forward(x *tensor.Tensor) *tensor.Tensor {
	x = relu(f.ProjIn.Forward(x))
	for _, l := range f.Layers {
		x = relu(l.Forward(x))
	}
	return f.ProjOut.Forward(x)
}

// MLPBlock is the two-layer MLP of the encoder blocks (GELU) and of the two-way
// transformer (ReLU): lin1, activation, lin2.
type MLPBlock struct {
	Lin1, Lin2 *nn.Linear
	ReLU       bool
}

func loadMLPBlock(w *weights.Source, dim, hidden int, relu bool) *MLPBlock {
	return &MLPBlock{Lin1: nn.LoadLinear(w.Sub("lin1"), dim, hidden, true),
		Lin2: nn.LoadLinear(w.Sub("lin2"), hidden, dim, true), ReLU: relu}
}

// Forward applies the MLP to the last axis of x.
func (m *MLPBlock) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := m.Lin1.Forward(x)
	if m.ReLU {
		h = relu(h)
	} else {
		h = h.GELU()
	}
	return m.Lin2.Forward(h)
}

// UpConv is a transposed convolution whose kernel equals its stride (SAM's output
// upscaling: kernel 2, stride 2). Output pixel (2i+a, 2j+b) then depends on input
// pixel (i, j) alone, through the kernel tap (a, b), so the op is one product per
// pixel: no overlap-add, no new backend op.
type UpConv struct {
	// Weight is PyTorch's ConvTranspose2d layout [In, Out, K, K]; Bias is [Out].
	Weight, Bias *tensor.Tensor
	K            int
}

func loadUpConv(w *weights.Source, in, out, k int) *UpConv {
	return &UpConv{Weight: w.Tensor("weight", in, out, k, k), Bias: w.Tensor("bias", out), K: k}
}

// Forward upsamples x [B, H, W, In] (channels last) to [B, K·H, K·W, Out].
func (u *UpConv) Forward(x *tensor.Tensor) *tensor.Tensor {
	b, h, w, in := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	k, out := u.K, u.Weight.Dim(1)
	if u.Weight.Dim(0) != in {
		panic(fmt.Sprintf("sam: upconv: input %v with weight %v", x.Shape(), u.Weight.Shape()))
	}
	// [B·H·W, In]·[In, Out·K·K] → [B, H, W, Out, K(a), K(b)] → [B, H, a, W, b, Out]
	y := x.Reshape(b*h*w, in).MatMul(u.Weight.Reshape(in, out*k*k))
	y = y.Reshape(b, h, w, out, k, k).Permute(0, 1, 4, 2, 5, 3).Reshape(b, k*h, k*w, out)
	return y.Add(u.Bias)
}

// TokenAttention is the two-way transformer's attention (transformers'
// SamAttention): projections to an internal width of hidden/downsample, heads, and
// softmax(q·kᵀ/√d)·v, with no position terms of its own (callers add them).
type TokenAttention struct {
	Q, K, V, Out *nn.Linear
	Heads        int
}

func loadTokenAttention(w *weights.Source, hidden, downsample, heads int) *TokenAttention {
	inner := hidden / downsample
	return &TokenAttention{
		Q:     nn.LoadLinear(w.Sub("q_proj"), hidden, inner, true),
		K:     nn.LoadLinear(w.Sub("k_proj"), hidden, inner, true),
		V:     nn.LoadLinear(w.Sub("v_proj"), hidden, inner, true),
		Out:   nn.LoadLinear(w.Sub("out_proj"), inner, hidden, true),
		Heads: heads,
	}
}

// Forward attends from query [B, N, C] to key and value [B, M, C].
func (a *TokenAttention) Forward(query, key, value *tensor.Tensor) *tensor.Tensor {
	q := nn.SplitHeads(a.Q.Forward(query), a.Heads)
	k := nn.SplitHeads(a.K.Forward(key), a.Heads)
	v := nn.SplitHeads(a.V.Forward(value), a.Heads)
	scale := 1 / math.Sqrt(float64(q.Dim(-1)))
	return a.Out.Forward(nn.MergeHeads(nn.ScaledDotProduct(q, k, v, nil, scale, false, nil)))
}
