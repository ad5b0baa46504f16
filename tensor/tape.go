package tensor

import (
	"errors"
	"fmt"
)

// Tape records the ops applied to tracked tensors so that Backward can return
// gradients with respect to them. A tape is used once: Backward ends it.
// It is not safe for concurrent use.
type Tape struct {
	nodes []*node
	ended bool
}

// node is one recorded op: out = op(in...; attr), with what its backward needs.
type node struct {
	tape  *Tape
	op    OpKind
	in    []*Tensor
	out   *Tensor
	saved []*Tensor
	attr  any
}

// NewTape starts a tape.
func NewTape() *Tape { return &Tape{} }

// Track returns x as a tensor whose gradient Backward can return. It shares x's buffer.
func (tp *Tape) Track(x *Tensor) *Tensor {
	if tp.ended {
		panic("tensor: track: the tape has ended")
	}
	t := &Tensor{shape: x.shape, buf: x.buf, b: x.b}
	t.node = &node{tape: tp, op: opLeaf, out: t}
	tp.nodes = append(tp.nodes, t.node)
	return t
}

// Tracked reports whether t is recorded on an active tape.
func (t *Tensor) Tracked() bool { return t.node != nil && !t.node.tape.ended }

// Len is the number of recorded nodes, tracked inputs included.
func (tp *Tape) Len() int { return len(tp.nodes) }

// record adds a node for out when any input is tracked. Inputs that are tracked
// by different tapes are a bug.
func record(op OpKind, out *Tensor, in []*Tensor, saved []*Tensor, attr any) {
	var tp *Tape
	for _, x := range in {
		if x == nil || !x.Tracked() {
			continue
		}
		if tp != nil && x.node.tape != tp {
			panic(fmt.Sprintf("tensor: %s: inputs tracked by two different tapes", op))
		}
		tp = x.node.tape
	}
	if tp == nil {
		return
	}
	n := &node{tape: tp, op: op, in: in, out: out, saved: saved, attr: attr}
	out.node = n
	tp.nodes = append(tp.nodes, n)
}

// requireUntracked panics when a constant operand (a weight) is tracked: the
// engine computes input gradients only.
func requireUntracked(op string, ts ...*Tensor) {
	for _, t := range ts {
		if t != nil && t.Tracked() {
			panic(fmt.Sprintf("tensor: %s: gradients with respect to weights are not supported (input gradients only)", op))
		}
	}
}

// Backward returns dloss/dx for each x in wrt, where loss is a one-element tensor
// computed from tensors tracked by this tape. A wrt tensor that the loss does not
// depend on gets a zero gradient. Backward ends the tape.
func (tp *Tape) Backward(loss *Tensor, wrt ...*Tensor) ([]*Tensor, error) {
	if tp.ended {
		return nil, errors.New("tensor: backward: the tape has ended")
	}
	if loss.Numel() != 1 {
		return nil, fmt.Errorf("tensor: backward: loss has shape %v, want one element", loss.shape)
	}
	if !loss.Tracked() || loss.node.tape != tp {
		return nil, errors.New("tensor: backward: the loss does not depend on any tensor tracked by this tape")
	}
	for i, x := range wrt {
		if !x.Tracked() || x.node.tape != tp {
			return nil, fmt.Errorf("tensor: backward: wrt[%d] is not tracked by this tape", i)
		}
	}
	// End the tape first: the backward rules run ordinary ops on tracked inputs,
	// and those must not be recorded.
	tp.ended = true
	nodes := tp.nodes
	tp.nodes = nil

	want := make(map[*node]bool, len(wrt))
	for _, x := range wrt {
		want[x.node] = true
	}
	grads := map[*node]*Tensor{loss.node: Full(loss.b, loss.DType(), 1, loss.shape...)}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		dy := grads[n]
		if dy == nil || n.op == opLeaf {
			continue
		}
		if !want[n] {
			delete(grads, n)
		}
		dxs := backwardOf[n.op](n, dy)
		for j, x := range n.in {
			if x == nil || dxs[j] == nil || x.node == nil || x.node.tape != tp {
				continue
			}
			dx := dxs[j]
			if !dx.shape.Equal(x.shape) {
				panic(fmt.Sprintf("tensor: backward of %s: gradient shape %v for input %d of shape %v", n.op, dx.shape, j, x.shape))
			}
			if g := grads[x.node]; g != nil {
				dx = g.Add(dx)
			}
			grads[x.node] = dx
		}
	}
	out := make([]*Tensor, len(wrt))
	for i, x := range wrt {
		if g := grads[x.node]; g != nil {
			out[i] = g
		} else {
			out[i] = Zeros(x.b, x.DType(), x.shape...)
		}
	}
	return out, nil
}
