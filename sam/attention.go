package sam

import (
	"math"

	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// VisionAttention is the encoder's multi-head attention with decomposed relative
// position terms (MViTv2; the original image_encoder.Attention): for a query at
// (i, j) and a key at (k, l) of an h×w window, the score q·k/√d gets
// q·Rh[i-k] + q·Rw[j-l] added, Rh and Rw being learned tables over the 2h-1 and
// 2w-1 possible offsets.
type VisionAttention struct {
	QKV, Proj *nn.Linear
	// RelPosH and RelPosW are [2·side-1, headDim].
	RelPosH, RelPosW *tensor.Tensor
	Heads            int
}

// loadVisionAttention reads an attention over side×side tokens (a window, or the
// whole grid for a global block). The stored tables must cover exactly that span:
// the original resizes mismatched tables by linear interpolation, which no
// released SAM needs, so a mismatch is reported as a misshaped tensor instead.
func loadVisionAttention(w *weights.Source, dim, heads, side int, qkvBias bool) *VisionAttention {
	hd := dim / heads
	return &VisionAttention{
		QKV:     nn.LoadLinear(w.Sub("qkv"), dim, 3*dim, qkvBias),
		Proj:    nn.LoadLinear(w.Sub("proj"), dim, dim, true),
		RelPosH: w.Tensor("rel_pos_h", 2*side-1, hd),
		RelPosW: w.Tensor("rel_pos_w", 2*side-1, hd),
		Heads:   heads,
	}
}

// Forward attends within each window of x [B, h, w, D] (a batch of windows, or
// of whole grids) and returns the same shape.
func (a *VisionAttention) Forward(x *tensor.Tensor) *tensor.Tensor {
	b, h, w, dim := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	hd := dim / a.Heads
	// [B, h·w, 3, heads, hd] → [3, B, heads, h·w, hd]
	qkv := a.QKV.Forward(x).Reshape(b, h*w, 3, a.Heads, hd).Permute(2, 0, 3, 1, 4)
	parts := qkv.Chunk(3, 0)
	q := parts[0].Reshape(b, a.Heads, h*w, hd)
	k := parts[1].Reshape(b, a.Heads, h*w, hd)
	v := parts[2].Reshape(b, a.Heads, h*w, hd)
	bias := relPosBias(q.Reshape(b*a.Heads, h, w, hd), a.RelPosH, a.RelPosW).Reshape(b, a.Heads, h*w, h*w)
	o := nn.ScaledDotProduct(q, k, v, bias, 1/math.Sqrt(float64(hd)), false, nil)
	// [B, heads, h·w, hd] → [B, h, w, heads·hd]
	o = o.Reshape(b, a.Heads, h, w, hd).Permute(0, 2, 3, 1, 4).Reshape(b, h, w, dim)
	return a.Proj.Forward(o)
}

// relPosBias returns the decomposed relative position terms for queries q
// [N, h, w, hd] over keys of the same h×w grid, as [N, h·w, h·w]:
// bias[n, (i,j), (k,l)] = q[n,i,j]·Rh[i-k+h-1] + q[n,i,j]·Rw[j-l+w-1]
// (the original add_decomposed_rel_pos; q unscaled, as there).
func relPosBias(q, relH, relW *tensor.Tensor) *tensor.Tensor {
	n, h, w, hd := q.Dim(0), q.Dim(1), q.Dim(2), q.Dim(3)
	rh := tensor.Embedding(relH, offsetIDs(q.Backend(), h)) // [h, h, hd]: row i, key k
	rw := tensor.Embedding(relW, offsetIDs(q.Backend(), w)) // [w, w, hd]
	// termH[n,i,j,k] = Σc q[n,i,j,c]·rh[i,k,c]: a product batched over i.
	qh := q.Permute(1, 0, 2, 3).Reshape(h, n*w, hd)
	termH := tensor.MatMulT(qh, rh, false, true).Reshape(h, n, w, h).Permute(1, 0, 2, 3) // [n, h, w, kh]
	// termW[n,i,j,l] = Σc q[n,i,j,c]·rw[j,l,c]: batched over j.
	qw := q.Permute(2, 0, 1, 3).Reshape(w, n*h, hd)
	termW := tensor.MatMulT(qw, rw, false, true).Reshape(w, n, h, w).Permute(1, 2, 0, 3) // [n, h, w, kw]
	bias := termH.Reshape(n, h, w, h, 1).Add(termW.Reshape(n, h, w, 1, w))
	return bias.Reshape(n, h*w, h*w)
}

// offsetIDs is the [size, size] table of i - k + size - 1: the row of a relative
// position table for query position i and key position k.
func offsetIDs(b tensor.Backend, size int) *tensor.Tensor {
	ids := make([]int32, size*size)
	for i := 0; i < size; i++ {
		for k := 0; k < size; k++ {
			ids[i*size+k] = int32(i - k + size - 1)
		}
	}
	return tensor.FromInt32(b, tensor.Shape{size, size}, ids)
}
