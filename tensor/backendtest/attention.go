package backendtest

import (
	"fmt"
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func testAttentionForward(t *testing.T, f forward) {
	for _, c := range []struct{ b, n, m, d int }{{2, 7, 5, 8}, {3, 64, 77, 40}, {1, 33, 33, 160}} {
		qv, q := f.host(23, c.b, c.n, c.d)
		kv, k := f.host(24, c.b, c.m, c.d)
		vv, v := f.host(25, c.b, c.m, c.d)
		scale := 1 / math.Sqrt(float64(c.d))
		var want []float64
		for i := 0; i < c.b; i++ {
			scores := refMatMul(qv[i*c.n*c.d:(i+1)*c.n*c.d], kv[i*c.m*c.d:(i+1)*c.m*c.d], c.n, c.m, c.d, false, true)
			for j := range scores {
				scores[j] *= scale
			}
			want = append(want, refMatMul(refSoftmax(scores, c.m), vv[i*c.m*c.d:(i+1)*c.m*c.d], c.n, c.d, c.m, false, false)...)
		}
		f.check(t, tensor.Attention(q, k, v, scale), tensor.Shape{c.b, c.n, c.d}, want)
	}
}

// testAttentionHeadsForward checks the interleaved-heads layout (q [B, N,
// H·D]) against the split reference, head by head.
func testAttentionHeadsForward(t *testing.T, f forward) {
	for _, c := range []struct{ b, h, n, m, d int }{{2, 3, 7, 5, 8}, {1, 5, 64, 77, 40}} {
		qv, q := f.host(26, c.b, c.n, c.h*c.d)
		kv, k := f.host(27, c.b, c.m, c.h*c.d)
		vv, v := f.host(28, c.b, c.m, c.h*c.d)
		scale := 1 / math.Sqrt(float64(c.d))
		// head returns head h of entry b of x [B, rows, H·D] as [rows, D].
		head := func(x []float64, b, h, rows int) []float64 {
			var r []float64
			for j := 0; j < rows; j++ {
				off := ((b*rows+j)*c.h + h) * c.d
				r = append(r, x[off:off+c.d]...)
			}
			return r
		}
		want := make([]float64, c.b*c.n*c.h*c.d)
		for b := 0; b < c.b; b++ {
			for h := 0; h < c.h; h++ {
				scores := refMatMul(head(qv, b, h, c.n), head(kv, b, h, c.m), c.n, c.m, c.d, false, true)
				for j := range scores {
					scores[j] *= scale
				}
				o := refMatMul(refSoftmax(scores, c.m), head(vv, b, h, c.m), c.n, c.d, c.m, false, false)
				for j := 0; j < c.n; j++ {
					copy(want[((b*c.n+j)*c.h+h)*c.d:][:c.d], o[j*c.d:][:c.d])
				}
			}
		}
		f.check(t, tensor.AttentionHeads(q, k, v, c.h, scale), tensor.Shape{c.b, c.n, c.h * c.d}, want)
	}
}

// testAttentionQKVForward checks attention that reads q, k and v in place
// from one fused projection [B, N, 3·H·D] (row strides 3·H·D, offsets 0, H·D,
// 2·H·D) against the packed layout of the same thirds, copied out by Narrow.
func testAttentionQKVForward(t *testing.T, f forward) {
	for _, c := range []struct{ b, h, n, d int }{{2, 3, 7, 8}, {1, 1, 33, 40}, {1, 5, 64, 40}} {
		_, qkv := f.host(29, c.b, c.n, 3*c.h*c.d)
		inner := c.h * c.d
		q, k, v := qkv.Narrow(2, 0, inner), qkv.Narrow(2, inner, inner), qkv.Narrow(2, 2*inner, inner)
		scale := 1 / math.Sqrt(float64(c.d))
		want := tensor.AttentionHeads(q, k, v, c.h, scale).Float64s()
		f.check(t, tensor.AttentionQKV(qkv, c.h, scale), tensor.Shape{c.b, c.n, inner}, want)
	}
}

// testAttentionGrad checks the fused attention's gradients (recorded as one
// op, its backward recomputing the probabilities) against those of the
// composed matmul, softmax, matmul on the tape, in both layouts, with a
// weighted loss so every output element matters.
func testAttentionGrad(t *testing.T, f forward) {
	for _, c := range []struct{ b, h, n, m, d int }{{2, 0, 7, 5, 8}, {1, 0, 33, 40, 16}, {2, 3, 7, 5, 8}, {1, 2, 20, 77, 40}} {
		h := max(c.h, 1)
		_, q := f.host(51, c.b, c.n, h*c.d)
		_, k := f.host(52, c.b, c.m, h*c.d)
		_, v := f.host(53, c.b, c.m, h*c.d)
		_, r := f.host(54, c.b, c.n, h*c.d)
		scale := 1 / math.Sqrt(float64(c.d))
		split := func(x *tensor.Tensor) *tensor.Tensor {
			return x.Reshape(c.b, x.Dim(1), h, c.d).Permute(0, 2, 1, 3)
		}
		fused := func(q, k, v *tensor.Tensor) *tensor.Tensor {
			if c.h == 0 {
				return tensor.Attention(q, k, v, scale)
			}
			return tensor.AttentionHeads(q, k, v, c.h, scale)
		}
		composed := func(q, k, v *tensor.Tensor) *tensor.Tensor {
			p := tensor.MatMulT(split(q), split(k), false, true).Scale(scale).Softmax()
			return p.MatMul(split(v)).Permute(0, 2, 1, 3).Reshape(c.b, c.n, h*c.d)
		}
		grads := func(att func(q, k, v *tensor.Tensor) *tensor.Tensor) []*tensor.Tensor {
			tape := tensor.NewTape()
			tq, tk, tv := tape.Track(q), tape.Track(k), tape.Track(v)
			g, err := tape.Backward(att(tq, tk, tv).Mul(r).Sum(), tq, tk, tv)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		got, want := grads(fused), grads(composed)
		for i, name := range []string{"dq", "dk", "dv"} {
			t.Run(fmt.Sprintf("%dx%dh/%dx%dx%d/%s", c.b, c.h, c.n, c.m, c.d, name), func(t *testing.T) {
				AssertClose(t, got[i], want[i], f.tol)
			})
		}
	}
}
