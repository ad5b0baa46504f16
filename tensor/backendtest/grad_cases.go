package backendtest

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// gradCases lists a gradient check for every differentiable op, on small float64
// shapes (finite differences cost two evaluations per input element).
func gradCases(b tensor.Backend) []gradCase { return gradCasesIn(b, tensor.Float64) }

// gradCasesIn builds the cases with inputs of dtype d (the parity runner
// builds them on two backends, in two dtypes, from the same seeds).
func gradCasesIn(b tensor.Backend, d tensor.DType) []gradCase {
	f64 := d
	rn := func(seed uint64, shape ...int) *tensor.Tensor { return Randn(b, f64, seed, shape...) }
	one := func(f func(x *tensor.Tensor) *tensor.Tensor) func([]*tensor.Tensor) *tensor.Tensor {
		return func(in []*tensor.Tensor) *tensor.Tensor { return f(in[0]) }
	}
	var cs []gradCase
	add := func(name string, inputs []*tensor.Tensor, wrt []int, f func([]*tensor.Tensor) *tensor.Tensor) {
		cs = append(cs, gradCase{name, inputs, wrt, f})
	}

	for _, op := range tensor.UnaryOps() {
		x := rn(1, 3, 7)
		switch op {
		case tensor.Sqrt:
			x = Uniform(b, f64, 1, 0.5, 2, 3, 7)
		case tensor.Abs:
			x = awayFromZero(b, x, 0.01)
		}
		add("unary/"+op.String(), []*tensor.Tensor{x}, []int{0}, one(func(x *tensor.Tensor) *tensor.Tensor { return x.Unary(op) }))
	}
	add("affine", []*tensor.Tensor{rn(2, 4, 5)}, []int{0}, one(func(x *tensor.Tensor) *tensor.Tensor { return x.Affine(-1.5, 0.25) }))

	for _, op := range []tensor.BinaryOp{tensor.Add, tensor.Sub, tensor.Mul, tensor.Div} {
		for _, sh := range [][2][]int{
			{{2, 3, 4}, {2, 3, 4}}, // same shape
			{{2, 3, 4}, {4}},       // row vector (a bias)
			{{2, 1, 4}, {3, 1}},    // both broadcast
			{{1, 5, 2, 2}, {}},     // scalar
			{{3}, {2, 3, 3}},       // left operand broadcast
		} {
			a, bb := rn(3, sh[0]...), rn(4, sh[1]...)
			if op == tensor.Div {
				bb = Uniform(b, f64, 4, 0.5, 2, sh[1]...)
			}
			add(fmt.Sprintf("binary/%s/%v%v", op, sh[0], sh[1]), []*tensor.Tensor{a, bb}, []int{0, 1},
				func(in []*tensor.Tensor) *tensor.Tensor { return binaryOf(op, in[0], in[1]) })
		}
	}

	for _, c := range []struct {
		a, b           []int
		transA, transB bool
	}{
		{[]int{3, 4}, []int{4, 5}, false, false},
		{[]int{4, 3}, []int{4, 5}, true, false},
		{[]int{3, 4}, []int{5, 4}, false, true},
		{[]int{4, 3}, []int{5, 4}, true, true},
		{[]int{2, 3, 4}, []int{2, 4, 5}, false, false},      // batched
		{[]int{2, 2, 3, 4}, []int{2, 2, 5, 4}, false, true}, // two batch axes (attention scores)
		{[]int{2, 3, 4}, []int{4, 5}, false, false},         // b shared across the batch
		{[]int{3, 4}, []int{2, 4, 5}, false, false},         // a shared across the batch
	} {
		add(fmt.Sprintf("matmul/%v%v/tA=%v,tB=%v", c.a, c.b, c.transA, c.transB),
			[]*tensor.Tensor{rn(5, c.a...), rn(6, c.b...)}, []int{0, 1},
			func(in []*tensor.Tensor) *tensor.Tensor { return tensor.MatMulT(in[0], in[1], c.transA, c.transB) })
	}
	add("linear", []*tensor.Tensor{rn(7, 2, 3, 4), rn(8, 5, 4), rn(9, 5)}, []int{0},
		func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Linear(in[1], in[2]) })

	for _, c := range []struct{ n, ch, h, w, o, k, stride, pad int }{
		{2, 3, 5, 5, 4, 3, 1, 1}, // 3×3, same size
		{1, 2, 6, 5, 3, 3, 2, 1}, // 3×3 stride 2 (downsample), odd width
		{2, 4, 3, 3, 2, 1, 1, 0}, // 1×1
		{1, 2, 4, 4, 2, 3, 1, 0}, // 3×3 without padding
	} {
		add(fmt.Sprintf("conv2d/%dx%dx%dx%d/k%d/s%d/p%d", c.n, c.ch, c.h, c.w, c.k, c.stride, c.pad),
			[]*tensor.Tensor{rn(10, c.n, c.ch, c.h, c.w), rn(11, c.o, c.ch, c.k, c.k), rn(12, c.o)}, []int{0},
			func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], in[2], c.stride, c.pad) })
	}

	add("group_norm/affine", []*tensor.Tensor{rn(13, 2, 6, 2, 3), rn(14, 6), rn(15, 6)}, []int{0},
		func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNorm(3, in[1], in[2], 1e-5) })
	add("group_norm/plain", []*tensor.Tensor{rn(16, 1, 4, 5)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.GroupNorm(2, nil, nil, 1e-6) }))
	// The fused group norm + SiLU: groups of 2 and 5 channels, planes of 6
	// and 7, gamma with and without beta, and no affine.
	add("group_norm_silu/affine", []*tensor.Tensor{rn(44, 2, 6, 2, 3), rn(45, 6), rn(46, 6)}, []int{0},
		func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNormSiLU(3, in[1], in[2], 1e-5) })
	add("group_norm_silu/one_group", []*tensor.Tensor{rn(47, 2, 5, 7), rn(48, 5), rn(49, 5)}, []int{0},
		func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNormSiLU(1, in[1], in[2], 1e-6) })
	add("group_norm_silu/gamma_only", []*tensor.Tensor{rn(50, 1, 4, 3, 3), rn(51, 4)}, []int{0},
		func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNormSiLU(2, in[1], nil, 1e-5) })
	add("group_norm_silu/plain", []*tensor.Tensor{rn(52, 1, 4, 5)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.GroupNormSiLU(2, nil, nil, 1e-6) }))
	// ... with a shift [N, C] added to x first (a ResNet block's time embedding), tracked too.
	add("add_group_norm_silu/affine", []*tensor.Tensor{rn(53, 2, 6, 2, 3), rn(54, 2, 6), rn(55, 6), rn(56, 6)}, []int{0, 1},
		func(in []*tensor.Tensor) *tensor.Tensor { return in[0].AddGroupNormSiLU(in[1], 3, in[2], in[3], 1e-5) })
	add("add_group_norm_silu/one_group", []*tensor.Tensor{rn(57, 2, 5, 7), rn(58, 2, 5)}, []int{0, 1},
		func(in []*tensor.Tensor) *tensor.Tensor { return in[0].AddGroupNormSiLU(in[1], 1, nil, nil, 1e-6) })
	add("layer_norm/affine", []*tensor.Tensor{rn(17, 2, 3, 8), rn(18, 8), rn(19, 8)}, []int{0},
		func(in []*tensor.Tensor) *tensor.Tensor { return in[0].LayerNorm(in[1], in[2], 1e-5) })
	add("layer_norm/plain", []*tensor.Tensor{rn(20, 4, 6)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.LayerNorm(nil, nil, 1e-5) }))
	add("softmax", []*tensor.Tensor{rn(21, 2, 3, 7)}, []int{0}, one((*tensor.Tensor).Softmax))
	add("geglu", []*tensor.Tensor{rn(22, 2, 3, 8)}, []int{0}, one((*tensor.Tensor).GEGLU))
	add("geglu/bias", []*tensor.Tensor{rn(59, 2, 3, 8), rn(60, 8)}, []int{0},
		func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GEGLUBias(in[1]) })
	add("combine", []*tensor.Tensor{rn(65, 3, 2, 4)}, []int{0}, one(func(x *tensor.Tensor) *tensor.Tensor {
		c := tensor.FromFloat64(x.Backend(), tensor.CoefDType(x.DType()), tensor.Shape{2, 3}, RandnValues(66, 6))
		return tensor.Combine(c, x)
	}))

	add("reshape", []*tensor.Tensor{rn(23, 2, 3, 4)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.Reshape(4, -1).Square() }))
	add("permute", []*tensor.Tensor{rn(24, 2, 3, 4, 5)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.Permute(2, 0, 3, 1) }))
	add("transpose", []*tensor.Tensor{rn(25, 3, 4)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.Transpose(0, 1) }))
	add("narrow", []*tensor.Tensor{rn(26, 3, 6, 2)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.Narrow(1, 2, 3) }))
	add("chunk", []*tensor.Tensor{rn(27, 2, 6)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { c := x.Chunk(3, 1); return c[0].Mul(c[2]).Sub(c[1]) }))
	for axis := 0; axis < 3; axis++ {
		add(fmt.Sprintf("concat/axis%d", axis), []*tensor.Tensor{rn(28, 2, 3, 4), rn(29, 2, 3, 4)}, []int{0, 1},
			func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Concat(axis, in[0], in[1].Square(), in[0]) })
	}
	add("upsample2x", []*tensor.Tensor{rn(30, 2, 3, 3, 2)}, []int{0}, one((*tensor.Tensor).Upsample2x))
	add("sum/axes", []*tensor.Tensor{rn(31, 2, 3, 4)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.Sum(0, 2) }))
	add("sum/all", []*tensor.Tensor{rn(32, 3, 4)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.Square().Sum() }))
	add("mean/axis", []*tensor.Tensor{rn(33, 2, 5, 3)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.Mean(-1) }))
	add("broadcast_to", []*tensor.Tensor{rn(34, 3, 1)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.BroadcastTo(2, 3, 4) }))

	mask := tensor.FromFloat64(b, f64, tensor.Shape{9}, []float64{0, 1, 1, 0, 1, 1, 1, 0, 0})
	rowMask := Uniform(b, f64, 35, 0, 1, 4, 9)
	add("masked_topk_mean/shared_mask", []*tensor.Tensor{rn(36, 4, 9)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.MaskedTopKMean(mask, 3) }))
	add("masked_topk_mean/row_mask", []*tensor.Tensor{rn(37, 4, 9)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.MaskedTopKMean(rowMask, 2) }))
	add("masked_topk_mean/no_mask", []*tensor.Tensor{rn(38, 2, 3, 9)}, []int{0},
		one(func(x *tensor.Tensor) *tensor.Tensor { return x.MaskedTopKMean(nil, 4) }))

	add("attention/split", []*tensor.Tensor{rn(44, 2, 5, 4), rn(45, 2, 6, 4), rn(46, 2, 6, 4)}, []int{0, 1, 2},
		func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Attention(in[0], in[1], in[2], 0.7) })
	add("attention/heads", []*tensor.Tensor{rn(47, 2, 5, 6), rn(48, 2, 7, 6), rn(49, 2, 7, 6)}, []int{0, 1, 2},
		func(in []*tensor.Tensor) *tensor.Tensor { return tensor.AttentionHeads(in[0], in[1], in[2], 2, 0.7) })

	// Composites: an input used twice (accumulation) and the attention pattern.
	add("composite/residual_conv", []*tensor.Tensor{rn(39, 1, 4, 4, 4), rn(40, 4, 4, 3, 3), rn(41, 4, 4)}, []int{0},
		func(in []*tensor.Tensor) *tensor.Tensor {
			x := in[0]
			h := x.GroupNorm(2, nil, nil, 1e-5).SiLU().Conv2d(in[1], nil, 1, 1)
			return x.Add(h).Conv2d(in[2].Reshape(4, 4, 1, 1), nil, 1, 0)
		})
	add("composite/attention", []*tensor.Tensor{rn(42, 2, 6, 8), rn(43, 2, 5, 8)}, []int{0, 1},
		func(in []*tensor.Tensor) *tensor.Tensor {
			q, kv := in[0], in[1]
			heads := func(x *tensor.Tensor) *tensor.Tensor { return x.Reshape(2, -1, 2, 4).Permute(0, 2, 1, 3) }
			p := tensor.MatMulT(heads(q), heads(kv), false, true).Scale(0.5).Softmax()
			return p.MatMul(heads(kv)).Permute(0, 2, 1, 3).Reshape(2, 6, 8)
		})
	return cs
}

func binaryOf(op tensor.BinaryOp, a, b *tensor.Tensor) *tensor.Tensor {
	switch op {
	case tensor.Add:
		return a.Add(b)
	case tensor.Sub:
		return a.Sub(b)
	case tensor.Mul:
		return a.Mul(b)
	}
	return a.Div(b)
}

// awayFromZero pushes values within eps of 0 (where |x| has a kink) out to ±eps.
func awayFromZero(b tensor.Backend, x *tensor.Tensor, eps float64) *tensor.Tensor {
	v := x.Float64s()
	for i := range v {
		if math.Abs(v[i]) < eps {
			v[i] = math.Copysign(eps, v[i])
		}
	}
	return tensor.FromFloat64(b, x.DType(), x.Shape(), v)
}
