package nn

import (
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// Self-attention through one stacked QKV projection and the strided
// attention gives what three projections and the packed attention give, in
// the fused path, in the hooked (composed) path with the same maps, and
// through the tape; cross-attention with keys and values projected
// beforehand (ForwardKV) matches Forward.
func TestSelfAttentionFusedQKV(t *testing.T) {
	b := cpu.New()
	const batch, n, heads, headDim = 2, 12, 3, 8
	dim := heads * headDim
	lin := func(seed uint64, bias bool) *Linear {
		l := &Linear{Weight: backendtest.Randn(b, tensor.Float64, seed, dim, dim).Scale(0.3)}
		if bias {
			l.Bias = backendtest.Randn(b, tensor.Float64, seed+100, dim)
		}
		return l
	}
	for _, bias := range []bool{false, true} {
		sep := &Attention{Q: lin(1, bias), K: lin(2, bias), V: lin(3, bias), Out: lin(4, true), Heads: heads}
		qkv := &Linear{Weight: tensor.Concat(0, sep.Q.Weight, sep.K.Weight, sep.V.Weight)}
		if bias {
			qkv.Bias = tensor.Concat(0, sep.Q.Bias, sep.K.Bias, sep.V.Bias)
		}
		fused := &Attention{QKV: qkv, Out: sep.Out, Heads: heads}
		x := backendtest.Randn(b, tensor.Float64, 5, batch, n, dim)
		const tol = 1e-12 // float64: reordered sums only
		backendtest.AssertClose(t, fused.Forward(x, nil, nil), sep.Forward(x, nil, nil), tol)

		var sepProbs, fusedProbs *tensor.Tensor
		want := sep.Forward(x, nil, func(p *tensor.Tensor) { sepProbs = p })
		got := fused.Forward(x, nil, func(p *tensor.Tensor) { fusedProbs = p })
		backendtest.AssertClose(t, got, want, tol)
		backendtest.AssertClose(t, fusedProbs, sepProbs, tol)

		grad := func(a *Attention) *tensor.Tensor {
			tape := tensor.NewTape()
			xt := tape.Track(x)
			g, err := tape.Backward(a.Forward(xt, nil, nil).Square().Sum(-1).Sum(-1).Sum(-1), xt)
			if err != nil {
				t.Fatal(err)
			}
			return g[0]
		}
		backendtest.AssertClose(t, grad(fused), grad(sep), tol)

		ctx := backendtest.Randn(b, tensor.Float64, 6, batch, 7, dim)
		k, v := sep.KeysValues(ctx)
		backendtest.AssertClose(t, sep.ForwardKV(x, k, v, nil), sep.Forward(x, ctx, nil), tol)
	}
}
