package tensor

import (
	"fmt"
	"sync/atomic"
)

// FLOPCounter wraps a backend and counts the floating-point operations of
// the products it runs: matrix products, convolutions (forward and input
// gradient) and fused attention, two per multiply-add. Elementwise ops,
// norms and softmax are not counted (they are bound by memory bandwidth,
// and achieved-TFLOP/s figures conventionally count the products only).
// bench-engine runs each call once through it to get the call's FLOP count.
type FLOPCounter struct {
	Backend
	n atomic.Int64
}

// CountFLOPs wraps b.
func CountFLOPs(b Backend) *FLOPCounter { return &FLOPCounter{Backend: b} }

// FLOPs is the count since the last Reset.
func (c *FLOPCounter) FLOPs() int64 { return c.n.Load() }

// Reset sets the count to zero.
func (c *FLOPCounter) Reset() { c.n.Store(0) }

// MatMul counts 2·Batch·M·N·K.
func (c *FLOPCounter) MatMul(a, b Buffer, p MatMulParams) Buffer {
	c.n.Add(p.FLOPs())
	return c.Backend.MatMul(a, b, p)
}

// Linear counts 2·Rows·In·Out.
func (c *FLOPCounter) Linear(x, w, bias, residual Buffer, p LinearParams) Buffer {
	c.n.Add(p.FLOPs())
	return c.Backend.Linear(x, w, bias, residual, p)
}

// Conv2d counts 2·N·O·OutH·OutW·C·KH·KW.
func (c *FLOPCounter) Conv2d(x, w, bias, residual Buffer, p Conv2dParams) Buffer {
	c.n.Add(p.FLOPs())
	return c.Backend.Conv2d(x, w, bias, residual, p)
}

// Conv2dBackwardInput counts as many as the forward.
func (c *FLOPCounter) Conv2dBackwardInput(dy, w Buffer, p Conv2dParams) Buffer {
	c.n.Add(p.FLOPs())
	return c.Backend.Conv2dBackwardInput(dy, w, p)
}

// Attention counts its two products, 4·Batch·N·M·D.
func (c *FLOPCounter) Attention(q, k, v Buffer, p AttentionParams) Buffer {
	c.n.Add(p.FLOPs())
	return c.Backend.Attention(q, k, v, p)
}

// AttentionForward counts as many as Attention.
func (c *FLOPCounter) AttentionForward(q, k, v Buffer, p AttentionParams) (out, lse Buffer) {
	c.n.Add(p.FLOPs())
	return c.Backend.AttentionForward(q, k, v, p)
}

// AttentionBackward counts its five products (dv, dP, dq, dk and the
// recomputed scores), 2.5 times the forward's: how FlashAttention-2 counts it
// (a kernel that recomputes more, as attention_fa2_bwd's does, reports the same).
func (c *FLOPCounter) AttentionBackward(q, k, v, out, lse, dout Buffer, p AttentionParams) (dq, dk, dv Buffer) {
	c.n.Add(p.BackwardFLOPs())
	return c.Backend.AttentionBackward(q, k, v, out, lse, dout, p)
}

// FLOPs of the products: 2·Batch·M·N·K.
func (p MatMulParams) FLOPs() int64 {
	return 2 * int64(p.Batch) * int64(p.M) * int64(p.N) * int64(p.K)
}

// FLOPs of the product: 2·Rows·In·Out.
func (p LinearParams) FLOPs() int64 { return 2 * int64(p.Rows) * int64(p.In) * int64(p.Out) }

// FLOPs of the convolution as a product: 2·N·O·OutH·OutW·C·KH·KW.
func (p Conv2dParams) FLOPs() int64 {
	return 2 * int64(p.N) * int64(p.O) * int64(p.OutH()) * int64(p.OutW()) * int64(p.C) * int64(p.KH) * int64(p.KW)
}

// FLOPs of the two products q·kᵀ and p·v: 4·Batch·N·M·D.
func (p AttentionParams) FLOPs() int64 {
	return 4 * int64(p.Batch) * int64(p.N) * int64(p.M) * int64(p.D)
}

// BackwardFLOPs of the backward's five products (q·kᵀ recomputed, dout·vᵀ,
// Pᵀ·dout, dS·k, dSᵀ·q): 10·Batch·N·M·D.
func (p AttentionParams) BackwardFLOPs() int64 { return p.FLOPs() / 4 * 10 }

// Capture forwards to the counted backend, when it captures: the products
// recorded count at each Replay (when the device runs them), not at the
// capture, so a denoising loop of replays counts as its eager twin does.
func (c *FLOPCounter) Capture(f func()) (Graph, error) {
	inner, ok := c.Backend.(Capturer)
	if !ok {
		return nil, fmt.Errorf("tensor: %s cannot capture calls: %w", c.Backend.Name(), ErrUnsupported)
	}
	before := c.n.Load()
	var last int64 // the products of f's last run (a backend may capture more than once)
	g, err := inner.Capture(func() {
		start := c.n.Load()
		f()
		last = c.n.Load() - start
	})
	c.n.Add(before - c.n.Load())
	if err != nil {
		return nil, err
	}
	return &countedGraph{Graph: g, c: c, flops: last}, nil
}

// CopyBuffer forwards to the counted backend (CaptureCall checks first that it captures).
func (c *FLOPCounter) CopyBuffer(dst, src Buffer) { c.Backend.(Capturer).CopyBuffer(dst, src) }

// countedGraph adds its products' FLOPs at each replay.
type countedGraph struct {
	Graph
	c     *FLOPCounter
	flops int64
}

func (g *countedGraph) Replay() {
	g.c.n.Add(g.flops)
	g.Graph.Replay()
}
