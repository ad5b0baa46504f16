package tensor

import "fmt"

// OpKind names a recorded op; backwardOf holds the rule for each.
type OpKind uint8

const (
	opLeaf OpKind = iota
	OpConvert
	OpUnary
	OpAffine
	OpBinary
	OpMatMul
	OpConv2d
	OpGroupNorm
	OpLayerNorm
	OpSoftmax
	OpGEGLU
	OpReshape
	OpPermute
	OpNarrow
	OpConcat
	OpReduceSum
	OpExpand
	OpUpsample2x
	OpTopKMean
	OpAttention
	OpCombine
)

var opNames = [...]string{opLeaf: "leaf", OpConvert: "convert", OpUnary: "unary", OpAffine: "affine",
	OpBinary: "binary", OpMatMul: "matmul", OpConv2d: "conv2d", OpGroupNorm: "group_norm",
	OpLayerNorm: "layer_norm", OpSoftmax: "softmax", OpGEGLU: "geglu", OpReshape: "reshape",
	OpPermute: "permute", OpNarrow: "narrow", OpConcat: "concat", OpReduceSum: "reduce_sum",
	OpExpand: "expand", OpUpsample2x: "upsample2x", OpTopKMean: "masked_topk_mean",
	OpAttention: "attention", OpCombine: "combine"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return fmt.Sprintf("op(%d)", k)
}

// backwardFunc returns dL/d(input i) for each input of n, given dy = dL/d(output);
// nil where an input gets no gradient (weights, masks, untracked inputs).
type backwardFunc func(n *node, dy *Tensor) []*Tensor

// backwardOf holds every backward rule. The rules run after the tape has ended,
// so the ops they use are not recorded.
var backwardOf = map[OpKind]backwardFunc{
	// y = convert(x) ⇒ dx = convert(dy) back to x's dtype
	OpConvert: func(n *node, dy *Tensor) []*Tensor {
		return []*Tensor{dy.To(n.in[0].DType())}
	},
	// y = f(x) ⇒ dx = dy·f'(x)
	OpUnary: func(n *node, dy *Tensor) []*Tensor {
		x := n.in[0]
		return []*Tensor{x.derive(x.b.UnaryBackward(n.attr.(UnaryOp), x.buf, dy.buf), x.shape)}
	},
	// y = a·x + b ⇒ dx = a·dy
	OpAffine: func(n *node, dy *Tensor) []*Tensor {
		return []*Tensor{dy.Scale(n.attr.(float64))}
	},
	// y = a∘b with broadcasting ⇒ each operand's gradient summed over its broadcast axes
	OpBinary: func(n *node, dy *Tensor) []*Tensor {
		a, b, y := n.in[0], n.in[1], n.out
		op := n.attr.(BinaryOp)
		// A broadcast operand's gradient of a product or quotient sums
		// several terms: in a 16-bit dtype they are formed and summed in
		// float32 and rounded once (rounding every term to bf16 before the
		// sum costs about 1% of the result, a bf16 op's whole error budget).
		d := dy.DType()
		wide := (op == Mul || op == Div) && (d == Float16 || d == BFloat16) && !(a.shape.Equal(y.shape) && b.shape.Equal(y.shape))
		if wide {
			dy, a, b = dy.To(Float32), a.To(Float32), b.To(Float32)
			if op == Div {
				y = y.To(Float32)
			}
		}
		var da, db *Tensor
		switch op {
		case Add: // ⇒ da = dy, db = dy
			da, db = dy, dy
		case Sub: // ⇒ da = dy, db = -dy
			da, db = dy, dy.Neg()
		case Mul: // ⇒ da = dy·b, db = dy·a
			da, db = dy.Mul(b), dy.Mul(a)
		case Div: // ⇒ da = dy/b, db = -dy·a/b² = -da·y
			da = dy.Div(b)
			db = da.Mul(y).Neg()
		}
		da, db = reduceTo(da, a.shape), reduceTo(db, b.shape)
		if wide {
			da, db = da.To(d), db.To(d)
		}
		return []*Tensor{da, db}
	},
	// C = A'·B' with A' = op(A), B' = op(B)
	// ⇒ dA' = dC·B'ᵀ, dB' = A'ᵀ·dC, transposed back when A or B is stored transposed;
	// an operand shared across the batch gets the sum over the batch.
	OpMatMul: func(n *node, dy *Tensor) []*Tensor {
		a, b := n.in[0], n.in[1]
		at := n.attr.(matmulAttr)
		var da, db *Tensor
		if needsGrad(a) {
			if !at.transA {
				da = MatMulT(dy, b, false, !at.transB)
			} else {
				da = MatMulT(b, dy, at.transB, true)
			}
			da = sumBatch(da, a)
		}
		if needsGrad(b) {
			if !at.transB {
				db = MatMulT(a, dy, !at.transA, false)
			} else {
				db = MatMulT(dy, a, true, at.transA)
			}
			db = sumBatch(db, b)
		}
		return []*Tensor{da, db}
	},
	// y = x⋆w + bias with w, bias constant ⇒ dx = transposed convolution of dy with w
	OpConv2d: func(n *node, dy *Tensor) []*Tensor {
		x, w := n.in[0], n.in[1]
		p := n.attr.(Conv2dParams)
		return []*Tensor{x.derive(x.b.Conv2dBackwardInput(dy.buf, w.buf, p), x.shape), nil, nil}
	},
	// x' = x + shift (shift [N, C] repeated over the plane, or none),
	// z = x̂·gamma + beta, x̂ = (x'-μ)·rstd per group, y = z (or z·σ(z) with p.SiLU)
	// ⇒ dz = dy (or dy·σ(z)·(1 + z·(1 − σ(z))), z recomputed from x and shift),
	//   dx = dx' = rstd·(g - mean(g) - x̂·mean(g·x̂)) with g = dz·gamma, means over the group,
	//   dshift = Σ over the plane of dx'
	OpGroupNorm: func(n *node, dy *Tensor) []*Tensor {
		x, shift := n.in[0], n.in[3]
		p := n.attr.(GroupNormParams)
		gamma, beta := bufOf(n.in[1]), bufOf(n.in[2])
		dx := x.derive(x.b.GroupNormBackward(x.buf, bufOf(shift), dy.buf, n.saved[0].buf, n.saved[1].buf, gamma, beta, p), x.shape)
		var dshift *Tensor
		if needsGrad(shift) {
			dshift = dx.Reshape(p.N, p.C, p.HW).Sum(2)
		}
		return []*Tensor{dx, nil, nil, dshift}
	},
	// the same as group norm, with the row as the group
	OpLayerNorm: func(n *node, dy *Tensor) []*Tensor {
		x := n.in[0]
		at := n.attr.(layerNormAttr)
		dx := x.b.LayerNormBackward(x.buf, dy.buf, n.saved[0].buf, n.saved[1].buf, bufOf(n.in[1]), at.rows, at.cols)
		return []*Tensor{x.derive(dx, x.shape), nil, nil}
	},
	// y = softmax(x) ⇒ dx = y·(dy - Σ dy·y)
	OpSoftmax: func(n *node, dy *Tensor) []*Tensor {
		x, y := n.in[0], n.out
		cols := x.Dim(-1)
		return []*Tensor{x.derive(x.b.SoftmaxBackward(y.buf, dy.buf, x.Numel()/cols, cols), x.shape)}
	},
	// y = h·GELU(g) of x + bias ⇒ dh = dy·GELU(g), dg = dy·h·GELU'(g)
	OpGEGLU: func(n *node, dy *Tensor) []*Tensor {
		x := n.in[0]
		cols := x.Dim(-1) / 2
		return []*Tensor{x.derive(x.b.GEGLUBackward(x.buf, bufOf(n.in[1]), dy.buf, x.Numel()/(2*cols), cols), x.shape), nil}
	},
	// y = C·x over the leading axis ⇒ dx = Cᵀ·dy
	OpCombine: func(n *node, dy *Tensor) []*Tensor {
		return []*Tensor{Combine(n.in[1].Transpose(0, 1), dy), nil}
	},
	// y = reshape(x) ⇒ dx = reshape(dy)
	OpReshape: func(n *node, dy *Tensor) []*Tensor {
		return []*Tensor{dy.Reshape(n.in[0].shape...)}
	},
	// y = permute(x, p) ⇒ dx = permute(dy, p⁻¹)
	OpPermute: func(n *node, dy *Tensor) []*Tensor {
		perm := n.attr.([]int)
		inv := make([]int, len(perm))
		for i, p := range perm {
			inv[p] = i
		}
		return []*Tensor{dy.Permute(inv...)}
	},
	// y = x[start:start+size] along axis ⇒ dx = dy placed in zeros
	OpNarrow: func(n *node, dy *Tensor) []*Tensor {
		x := n.in[0]
		at := n.attr.(narrowAttr)
		outer, total, inner := x.shape.split(at.axis)
		size := dy.shape[at.axis]
		dx := x.b.SliceBackward(dy.buf, outer, total*inner, at.start*inner, size*inner)
		return []*Tensor{x.derive(dx, x.shape)}
	},
	// y = concat(x...) ⇒ dx_i = the slice of dy that x_i filled
	OpConcat: func(n *node, dy *Tensor) []*Tensor {
		axis := n.attr.(int)
		dxs := make([]*Tensor, len(n.in))
		start := 0
		for i, x := range n.in {
			if needsGrad(x) {
				dxs[i] = dy.Narrow(axis, start, x.shape[axis])
			}
			start += x.shape[axis]
		}
		return dxs
	},
	// y = Σ_axis x (kept as size 1) ⇒ dx = dy repeated along axis
	OpReduceSum: func(n *node, dy *Tensor) []*Tensor {
		x := n.in[0]
		return []*Tensor{dy.BroadcastTo(x.shape...)}
	},
	// y = x repeated along axis ⇒ dx = Σ_axis dy
	OpExpand: func(n *node, dy *Tensor) []*Tensor {
		return []*Tensor{dy.sumAxis(n.attr.(reduceAttr).axis, true)}
	},
	// y = nearest 2× upsample of x ⇒ dx = sum of each 2×2 block of dy
	OpUpsample2x: func(n *node, dy *Tensor) []*Tensor {
		x := n.in[0]
		s := x.shape
		return []*Tensor{x.derive(x.b.Upsample2xBackward(dy.buf, s[0]*s[1], s[2], s[3]), s)}
	},
	// y = mean of the k chosen entries of x⊙mask ⇒ dx = dy·mask/k at the chosen positions
	OpTopKMean: func(n *node, dy *Tensor) []*Tensor {
		x := n.in[0]
		p := n.attr.(TopKParams)
		dx := x.b.TopKMeanBackward(dy.buf, n.saved[0].buf, bufOf(n.in[1]), p)
		return []*Tensor{x.derive(dx, x.shape), nil}
	},
	// o = softmax(scale·q·kᵀ)·v ⇒ with P recomputed from the saved log-sum-exp,
	// dv = Pᵀ·dy, dS = P∘(dy·vᵀ - rowsum(dy∘o)), dq = scale·dS·k, dk = scale·dSᵀ·q
	OpAttention: func(n *node, dy *Tensor) []*Tensor {
		q, k, v := n.in[0], n.in[1], n.in[2]
		dq, dk, dv := q.b.AttentionBackward(q.buf, k.buf, v.buf, n.out.buf, n.saved[0].buf, dy.buf, n.attr.(AttentionParams))
		return []*Tensor{q.derive(dq, q.shape), k.derive(dk, k.shape), v.derive(dv, v.shape)}
	},
}

// needsGrad reports, inside a backward rule (the tape has ended by then), whether
// input x was tracked and so needs its gradient.
func needsGrad(x *Tensor) bool { return x != nil && x.node != nil }

// sumBatch reduces a batched matmul gradient g [batch..., r, c] to the shape of
// operand x, summing over the batch when x was a matrix shared by the batch.
func sumBatch(g, x *Tensor) *Tensor {
	if g.Rank() == x.Rank() {
		return g
	}
	return g.Reshape(-1, x.shape[0], x.shape[1]).Sum(0)
}
