//go:build cuda

package cuda_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// attentionBwdCases: sequence lengths off the 64-row tiles and the 64- (32-)
// column tiles on both sides, in both layouts, small batch.
var attentionBwdCases = []struct{ batch, heads, n, m int }{
	{1, 2, 70, 77},   // heads interleaved, cross-attention-like
	{1, 0, 130, 130}, // split heads, self-attention-like
}

// checkAttentionBackward runs AttentionForward and AttentionBackward on g
// and compares out, lse, dq, dk and dv with the CPU's float64 twin on the
// same (rounded) inputs, random and non-zero, within tol.
func checkAttentionBackward(t *testing.T, g tensor.Backend, d tensor.DType, p tensor.AttentionParams, batch int, tol float64) {
	t.Helper()
	ref := cpu.New()
	hd := p.HeadCount() * p.D
	q := backendtest.Randn(g, d, 61, batch, p.N, hd)
	k := backendtest.Randn(g, d, 62, batch, p.M, hd)
	v := backendtest.Randn(g, d, 63, batch, p.M, hd)
	dout := backendtest.Randn(g, d, 64, batch, p.N, hd)
	onCPU := func(x tensor.Buffer) tensor.Buffer { return ref.FromFloat64(tensor.Float64, g.Float64s(x)) }
	out, lse := g.AttentionForward(q.Buffer(), k.Buffer(), v.Buffer(), p)
	dq, dk, dv := g.AttentionBackward(q.Buffer(), k.Buffer(), v.Buffer(), out, lse, dout.Buffer(), p)
	syncOK(t, g)
	rq, rk, rv, rdo := onCPU(q.Buffer()), onCPU(k.Buffer()), onCPU(v.Buffer()), onCPU(dout.Buffer())
	rout, rlse := ref.AttentionForward(rq, rk, rv, p)
	rdq, rdk, rdv := ref.AttentionBackward(rq, rk, rv, rout, rlse, rdo, p)
	for _, c := range []struct {
		name      string
		got, want tensor.Buffer
		tol       float64
	}{{"out", out, rout, tol}, {"lse", lse, rlse, 1e-5}, {"dq", dq, rdq, tol}, {"dk", dk, rdk, tol}, {"dv", dv, rdv, tol}} {
		t.Run(c.name, func(t *testing.T) {
			got, want := g.Float64s(c.got), ref.Float64s(c.want)
			backendtest.AssertCloseValues(t, got, want, c.tol)
			t.Logf("relative L2 error %.3g", backendtest.RelL2(got, want))
		})
	}
}

// TestAttentionFA2Backward: kernels/attention_fa2_bwd.cu (and the forward's
// log-sum-exp) against the CPU's float64 definition, for heads 40, 64, 80
// and 160 wide in f16 and bf16. Run it in both emulator orders
// (RFNET_EMU_ORDER=reverse): a missing barrier or cp.async wait shows there.
func TestAttentionFA2Backward(t *testing.T) {
	g := device(t)
	for _, d := range []tensor.DType{tensor.Float16, tensor.BFloat16} {
		for _, dim := range []int{40, 64, 80, 160} {
			for _, c := range attentionBwdCases {
				t.Run(fmt.Sprintf("%v/d%d/%dx%dh/%dx%d", d, dim, c.batch, c.heads, c.n, c.m), func(t *testing.T) {
					p := tensor.AttentionParams{Batch: c.batch * max(c.heads, 1), N: c.n, M: c.m, D: dim, Heads: c.heads, Scale: 1 / math.Sqrt(float64(dim))}
					if !cuda.FA2Fits(g, p, d) {
						t.Fatalf("attention_fa2 does not take %+v", p)
					}
					checkAttentionBackward(t, g, d, p, c.batch, backendtest.ParityTol[d])
				})
			}
		}
	}
}

// TestAttentionBackwardComposed: the paths beside the mma.sync kernels —
// float32 (the CUDA-core forward, matmul and softmax backward), and f16 of
// a width attention_fa2 has no instance for (in float32 and back) — in both
// layouts.
func TestAttentionBackwardComposed(t *testing.T) {
	g := device(t)
	for _, c := range []struct {
		d   tensor.DType
		dim int
	}{{tensor.Float32, 40}, {tensor.Float16, 32}} {
		for _, s := range attentionBwdCases {
			t.Run(fmt.Sprintf("%v/d%d/%dx%dh/%dx%d", c.d, c.dim, s.batch, s.heads, s.n, s.m), func(t *testing.T) {
				p := tensor.AttentionParams{Batch: s.batch * max(s.heads, 1), N: s.n, M: s.m, D: c.dim, Heads: s.heads, Scale: 1 / math.Sqrt(float64(c.dim))}
				checkAttentionBackward(t, g, c.d, p, s.batch, backendtest.ParityTol[c.d])
			})
		}
	}
}

// BenchmarkAttentionBackward times the backward (Di, key pass, query pass)
// at SD's 64² self-attention (SD 2.1: 10 = 2 × 5 heads of 64; SD 1.5: 16 =
// 2 × 8 heads of 40) in f16, split heads, and reports TFLOP/s of the
// backward's five products (10·B·N·M·D, FlashAttention-2's count; the
// kernels do seven, recomputing S and dP in both passes).
func BenchmarkAttentionBackward(b *testing.B) {
	g := device(b)
	d := tensor.Float16
	for _, c := range []struct{ batch, n, m, dim int }{{10, 4096, 4096, 64}, {16, 4096, 4096, 40}} {
		q := backendtest.Randn(g, d, 1, c.batch, c.n, c.dim)
		k := backendtest.Randn(g, d, 2, c.batch, c.m, c.dim)
		v := backendtest.Randn(g, d, 3, c.batch, c.m, c.dim)
		dout := backendtest.Randn(g, d, 4, c.batch, c.n, c.dim)
		p := tensor.AttentionParams{Batch: c.batch, N: c.n, M: c.m, D: c.dim, Scale: 1 / math.Sqrt(float64(c.dim))}
		out, lse := g.AttentionForward(q.Buffer(), k.Buffer(), v.Buffer(), p)
		b.Run(fmt.Sprintf("%s/%dx%dx%dx%d", d, c.batch, c.n, c.m, c.dim), func(b *testing.B) {
			for range b.N {
				dq, dk, dv := g.AttentionBackward(q.Buffer(), k.Buffer(), v.Buffer(), out, lse, dout.Buffer(), p)
				g.Free(dq)
				g.Free(dk)
				g.Free(dv)
			}
			syncOK(b, g)
			b.ReportMetric(float64(p.BackwardFLOPs())*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
		})
		g.Free(out)
		g.Free(lse)
	}
}

// TestAttentionTapeFA2: tensor.AttentionHeads on tracked f16 inputs (the
// guidance pass's self-attention: the mma.sync forward and backward) gives
// the gradients of the CPU's tape on the same inputs in float64.
func TestAttentionTapeFA2(t *testing.T) {
	g := device(t)
	ref := cpu.New()
	const heads, dim = 2, 40
	grads := func(b tensor.Backend, d tensor.DType, in []*tensor.Tensor) []*tensor.Tensor {
		tape := tensor.NewTape()
		x := make([]*tensor.Tensor, 3)
		for i := range x {
			x[i] = tape.Track(tensor.FromFloat64(b, d, in[i].Shape(), in[i].Float64s()))
		}
		r := tensor.FromFloat64(b, d, in[3].Shape(), in[3].Float64s())
		gs, err := tape.Backward(tensor.AttentionHeads(x[0], x[1], x[2], heads, 1/math.Sqrt(dim)).Mul(r).Sum(), x...)
		if err != nil {
			t.Fatal(err)
		}
		return gs
	}
	in := []*tensor.Tensor{backendtest.Randn(g, tensor.Float16, 71, 1, 70, heads*dim), backendtest.Randn(g, tensor.Float16, 72, 1, 77, heads*dim),
		backendtest.Randn(g, tensor.Float16, 73, 1, 77, heads*dim), backendtest.Randn(g, tensor.Float16, 74, 1, 70, heads*dim)}
	got, want := grads(g, tensor.Float16, in), grads(ref, tensor.Float64, in)
	syncOK(t, g)
	for i := range got {
		backendtest.AssertCloseValues(t, got[i].Float64s(), want[i].Float64s(), backendtest.ParityTol[tensor.Float16])
	}
}
