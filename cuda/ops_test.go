//go:build cuda

package cuda_test

import (
	"math"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// The conformance suite (forward references, storage dtypes, the tape) on the GPU.
func TestConformance(t *testing.T) { backendtest.RunAll(t, device(t)) }

// Every op's output and gradient on the GPU, in each compute dtype, against
// the CPU in float64: the CPU twin of each kernel is its reference.
func TestParityWithCPU(t *testing.T) {
	g := device(t)
	for _, d := range computeDTypes {
		t.Run(d.String(), func(t *testing.T) { backendtest.RunParity(t, cpu.New(), g, d, fixtures.GPUOpTol(d)) })
	}
}

// edgeCase is one op at sizes that reach the kernels' edges: partial GEMM
// tiles, rows longer than a block, keys past one attention tile, heads wider
// than the fused kernel, top-k rows past the shared-memory sort.
type edgeCase struct {
	name  string
	in    [][]int
	grad  bool // also compare the gradient of Σ f·r with respect to input 0
	f     func(in []*tensor.Tensor) *tensor.Tensor
	scale float64 // input scale (attention logits stay in a sane range)
	// prep, if set, shapes input i's random values before they are rounded
	// to the tested dtype (both backends then see the same inputs).
	prep func(i int, v []float64)
}

func edgeCases() []edgeCase {
	attn := func(d int) func(in []*tensor.Tensor) *tensor.Tensor {
		return func(in []*tensor.Tensor) *tensor.Tensor {
			return tensor.Attention(in[0], in[1], in[2], 1/math.Sqrt(float64(d)))
		}
	}
	mask := func(in []*tensor.Tensor) *tensor.Tensor { return in[1].Abs() }
	return []edgeCase{
		{name: "matmul/batched_partial_tiles", in: [][]int{{3, 130, 70}, {3, 70, 150}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].MatMul(in[1]) }},
		{name: "matmul/transposed", in: [][]int{{70, 130}, {150, 70}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return tensor.MatMulT(in[0], in[1], true, true) }},
		{name: "matmul/shared_weight", in: [][]int{{2, 67, 33}, {33, 129}},
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].MatMul(in[1]) }},
		{name: "conv2d/3x3_s1_bias", in: [][]int{{2, 5, 17, 13}, {7, 5, 3, 3}, {7}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], in[2], 1, 1) }},
		{name: "conv2d/3x3_s2", in: [][]int{{2, 5, 17, 13}, {7, 5, 3, 3}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], nil, 2, 1) }},
		{name: "conv2d/1x1", in: [][]int{{2, 9, 6, 7}, {4, 9, 1, 1}, {4}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], in[2], 1, 0) }},
		// The implicit GEMM's edges (kernels/conv_implicit.cu): channels past
		// one 64-row tile, positions past one 128-column tile, O·9 = 360 in
		// 32-wide slices with a partial last one; K split three ways (26
		// slices as 9, 9 and 8: few tiles, deep K) and summed; then no
		// padding (dy smaller than x). Its stride 2 neighbour takes im2col's path.
		{name: "conv2d/3x3_partial_tiles", in: [][]int{{2, 70, 13, 11}, {40, 70, 3, 3}, {40}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], in[2], 1, 1) }},
		{name: "conv2d/3x3_split_k", in: [][]int{{1, 70, 13, 11}, {90, 70, 3, 3}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], nil, 1, 1) }},
		{name: "conv2d/3x3_s2_partial_tiles", in: [][]int{{1, 66, 17, 19}, {33, 66, 3, 3}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], nil, 2, 1) }},
		{name: "conv2d/3x3_no_padding", in: [][]int{{2, 9, 10, 12}, {5, 9, 3, 3}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], nil, 1, 0) }},
		// Bias and residual written first, the product added onto them
		// (cuBLAS's beta = 1, the built-in kernels' accumulate).
		{name: "linear/residual_partial_tiles", in: [][]int{{2, 70, 33}, {130, 33}, {130}, {2, 70, 130}},
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].LinearAdd(in[1], in[2], in[3]) }},
		{name: "conv2d/3x3_residual_bias", in: [][]int{{2, 5, 17, 13}, {7, 5, 3, 3}, {7}, {2, 7, 17, 13}},
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2dAdd(in[1], in[2], in[3], 1, 1) }},
		{name: "conv2d/1x1_residual", in: [][]int{{2, 9, 6, 8}, {4, 9, 1, 1}, {2, 4, 6, 8}},
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2dAdd(in[1], nil, in[2], 1, 0) }},
		{name: "attention/d40_keys77", in: [][]int{{2, 3, 37, 40}, {2, 3, 77, 40}, {2, 3, 77, 40}}, f: attn(40)},
		{name: "attention/d64_keys300", in: [][]int{{1, 2, 70, 64}, {1, 2, 300, 64}, {1, 2, 300, 64}}, f: attn(64)},
		{name: "attention/d80_keys130", in: [][]int{{2, 70, 80}, {2, 130, 80}, {2, 130, 80}}, f: attn(80)},
		{name: "attention/d128_one_tile", in: [][]int{{1, 64, 128}, {1, 64, 128}, {1, 64, 128}}, f: attn(128)},
		{name: "attention/d20_unaligned_rows", in: [][]int{{3, 33, 20}, {3, 65, 20}, {3, 65, 20}}, f: attn(20)},
		// Keys growing along the sequence: the running maximum jumps tile
		// after tile, so the tensor-core kernel rescales its accumulators.
		{name: "attention/d64_rising_keys", in: [][]int{{2, 40, 64}, {2, 320, 64}, {2, 320, 64}}, f: attn(64),
			prep: func(i int, v []float64) {
				if i == 1 {
					for j := range v {
						v[j] *= 1 + float64(j/64%320)/20
					}
				}
			}},
		{name: "attention/d160_one_key", in: [][]int{{2, 5, 160}, {2, 1, 160}, {2, 1, 160}}, f: attn(160)},
		{name: "attention/d300_unfused", in: [][]int{{2, 9, 300}, {2, 11, 300}, {2, 11, 300}}, f: attn(300)},
		{name: "softmax/long_rows", in: [][]int{{5, 5000}}, grad: true, f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Softmax() }},
		{name: "layer_norm/1280", in: [][]int{{7, 1280}, {1280}, {1280}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].LayerNorm(in[1], in[2], 1e-5) }},
		{name: "group_norm/32_groups", in: [][]int{{2, 64, 32, 32}, {64}, {64}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNorm(32, in[1], in[2], 1e-6) }},
		// Few long runs: each is cut into slices (groupnorm_partial/apply),
		// here not on channel boundaries, and with channel means far apart
		// so that merging the slices' statistics matters.
		{name: "group_norm/sliced_runs", in: [][]int{{2, 6, 37, 41}, {6}, {6}}, grad: true,
			f:    func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNorm(2, in[1], in[2], 1e-5) },
			prep: offsetChannels(0, 6, 37*41)},
		{name: "group_norm/one_group_19_slices", in: [][]int{{2, 4, 100, 100}, {4}, {4}}, grad: true,
			f:    func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNorm(1, in[1], in[2], 1e-6) },
			prep: offsetChannels(0, 4, 100*100)},
		// The fused group norm + SiLU on each path: one block a run with a
		// Vec per thread (planes of 256), split runs element-wise (planes of
		// 1517) and split runs with Vecs (planes of 2304).
		{name: "group_norm_silu/32_groups_vec", in: [][]int{{2, 64, 16, 16}, {64}, {64}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNormSiLU(32, in[1], in[2], 1e-6) }},
		{name: "group_norm_silu/sliced_runs", in: [][]int{{2, 6, 37, 41}, {6}, {6}}, grad: true,
			f:    func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNormSiLU(2, in[1], in[2], 1e-5) },
			prep: offsetChannels(0, 6, 37*41)},
		{name: "group_norm_silu/sliced_vec", in: [][]int{{1, 2, 48, 48}, {2}, {2}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GroupNormSiLU(1, in[1], in[2], 1e-6) }},
		// ... with a shift [N, C] added first (a ResNet block's time embedding).
		{name: "add_group_norm_silu/32_groups_vec", in: [][]int{{2, 64, 16, 16}, {2, 64}, {64}, {64}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].AddGroupNormSiLU(in[1], 32, in[2], in[3], 1e-6) }},
		{name: "add_group_norm_silu/sliced_runs", in: [][]int{{2, 6, 37, 41}, {2, 6}, {6}, {6}}, grad: true,
			f:    func(in []*tensor.Tensor) *tensor.Tensor { return in[0].AddGroupNormSiLU(in[1], 2, in[2], in[3], 1e-5) },
			prep: offsetChannels(0, 6, 37*41)},
		// The gradient with respect to the shift (input 0 here) through split runs.
		{name: "add_group_norm_silu/sliced_shift_grad", in: [][]int{{2, 6}, {2, 6, 37, 41}, {6}, {6}}, grad: true,
			f:    func(in []*tensor.Tensor) *tensor.Tensor { return in[1].AddGroupNormSiLU(in[0], 2, in[2], in[3], 1e-5) },
			prep: offsetChannels(1, 6, 37*41)},
		{name: "add_group_norm_silu/sliced_vec", in: [][]int{{1, 2, 48, 48}, {1, 2}, {2}, {2}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].AddGroupNormSiLU(in[1], 1, in[2], in[3], 1e-6) }},
		{name: "sum/rows", in: [][]int{{3, 10000}}, scale: 0.01, f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Sum(-1) }},
		{name: "sum/middle", in: [][]int{{3, 1000, 7}}, scale: 0.01, f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Sum(1) }},
		{name: "topk/4096_cols", in: [][]int{{4, 4096}, {4096}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].MaskedTopKMean(mask(in), 100) }},
		// Rows past the shared-memory sort (topk_mean_global): a mask per
		// row, and SD 2.1's 96×96 maps at 768² under one mask, top 10%.
		{name: "topk/5000_cols_global", in: [][]int{{3, 5000}, {3, 5000}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].MaskedTopKMean(mask(in), 50) }},
		{name: "topk/9216_cols_global", in: [][]int{{2, 9216}, {9216}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].MaskedTopKMean(mask(in), 922) }},
		{name: "permute/rank5", in: [][]int{{2, 3, 4, 5, 6}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Permute(4, 0, 3, 1, 2) }},
		{name: "concat_narrow", in: [][]int{{3, 70, 5}, {3, 30, 5}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Concat(1, in[0], in[1]).Narrow(1, 50, 40) }},
		{name: "permute/heads_vec", in: [][]int{{2, 10, 3, 40}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Permute(0, 2, 1, 3) }},
		{name: "concat_narrow_vec", in: [][]int{{2, 16, 8}, {2, 8, 8}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return tensor.Concat(1, in[0], in[1]).Narrow(1, 8, 16) }},
		{name: "upsample2x", in: [][]int{{2, 3, 5, 7}}, grad: true, f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Upsample2x() }},
		{name: "geglu", in: [][]int{{37, 140}}, grad: true, f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GEGLU() }},
		{name: "binary/broadcast", in: [][]int{{2, 3, 40, 50}, {3, 1, 50}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Mul(in[1]).Add(in[1]) }},
		// Vec paths (16 bytes per thread: the last axis a multiple of 8) and
		// their tails, beside the element-wise shapes above.
		{name: "geglu/vec", in: [][]int{{37, 128}}, grad: true, f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GEGLU() }},
		// The feed-forward's projection bias added in the gate's pass, on both paths.
		{name: "geglu/bias", in: [][]int{{37, 140}, {140}}, grad: true, f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GEGLUBias(in[1]) }},
		{name: "geglu/bias_vec", in: [][]int{{37, 128}, {128}}, grad: true, f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].GEGLUBias(in[1]) }},
		{name: "binary/same_shape_vec", in: [][]int{{2, 3, 40, 64}, {2, 3, 40, 64}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor {
				return in[0].Add(in[1]).Mul(in[0]).Div(in[1].Abs().AddScalar(1))
			}},
		{name: "binary/per_channel_vec", in: [][]int{{2, 8, 16, 16}, {8, 1, 1}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Add(in[1]).Sub(in[0].Mul(in[1])) }},
		{name: "binary/row_bias_vec", in: [][]int{{5, 7, 64}, {64}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[1].Sub(in[0]).Add(in[1]) }},
		{name: "conv2d/bias_vec_planes", in: [][]int{{2, 5, 8, 12}, {7, 5, 3, 3}, {7}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], in[2], 1, 1) }},
		// im2col's Vec path: output rows of 16 (two Vecs of f16).
		{name: "conv2d/3x3_vec_rows", in: [][]int{{2, 5, 6, 16}, {7, 5, 3, 3}, {7}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], in[2], 1, 1) }},
		{name: "conv2d/3x3_s2_vec_rows", in: [][]int{{2, 5, 12, 32}, {7, 5, 3, 3}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].Conv2d(in[1], nil, 2, 1) }},
		// A denoising step's shape: five state slots from seven (state,
		// both guidance halves), planes of an odd size.
		{name: "combine/step", in: [][]int{{7, 3, 37, 41}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor {
				x := in[0]
				c := tensor.FromFloat64(x.Backend(), tensor.CoefDType(x.DType()), tensor.Shape{5, 7}, backendtest.RandnValues(77, 35))
				return tensor.Combine(c, x)
			}},
		{name: "unary/tail", in: [][]int{{1003}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor { return in[0].SiLU().Affine(0.5, -1).Exp() }},
		{name: "unary/chain", in: [][]int{{1000}}, grad: true,
			f: func(in []*tensor.Tensor) *tensor.Tensor {
				x := in[0]
				return x.SiLU().Add(x.GELU()).Add(x.Unary(tensor.QuickGELU)).Add(x.Abs().Sqrt()).Add(x.Sigmoid().Exp())
			}},
	}
}

// offsetChannels shifts channel c of input i ([N, C, HW]) by 2c-3.
func offsetChannels(i, channels, hw int) func(int, []float64) {
	return func(in int, v []float64) {
		if in == i {
			for j := range v {
				v[j] += float64(2*(j/hw%channels) - 3)
			}
		}
	}
}

func TestKernelEdges(t *testing.T) {
	g, c := device(t), cpu.New()
	for _, d := range computeDTypes {
		for _, ec := range edgeCases() {
			t.Run(d.String()+"/"+ec.name, func(t *testing.T) { testEdgeCase(t, g, c, d, ec) })
		}
	}
}

// The convolutions' edge cases on each path of the input gradient: the
// 3×3 ones in f16 and bf16 take the implicit GEMM by default (TestKernelEdges
// runs them so), and im2col + col2im with RFNET_CONV=im2col, here.
func TestConv2dGradientPaths(t *testing.T) {
	g, c := device(t), cpu.New()
	b := g.(*cuda.Backend)
	p := tensor.Conv2dParams{N: 2, C: 70, H: 13, W: 11, O: 40, KH: 3, KW: 3, Stride: 1, Pad: 1}
	for _, d := range []tensor.DType{tensor.Float16, tensor.BFloat16} {
		if !cuda.ImplicitGradient(g, p, d) {
			t.Fatalf("%v: the implicit GEMM does not take %+v by default", d, p)
		}
	}
	was := b.SetConv2dPath(cuda.ConvIm2col)
	defer b.SetConv2dPath(was)
	if cuda.ImplicitGradient(g, p, tensor.Float16) {
		t.Fatal("SetConv2dPath(ConvIm2col): the implicit GEMM still takes the gradient")
	}
	for _, d := range []tensor.DType{tensor.Float16, tensor.BFloat16} {
		for _, ec := range edgeCases() {
			if strings.HasPrefix(ec.name, "conv2d/") && ec.grad {
				t.Run(d.String()+"/im2col/"+ec.name, func(t *testing.T) { testEdgeCase(t, g, c, d, ec) })
			}
		}
	}
}

// testEdgeCase compares ec on the GPU in d with the CPU in float64, from the
// same inputs as rounded to d.
func testEdgeCase(t *testing.T, g, c tensor.Backend, d tensor.DType, ec edgeCase) {
	tol := fixtures.GPUOpTol(d)
	var gin, cin []*tensor.Tensor
	for i, shape := range ec.in {
		v := backendtest.RandnValues(uint64(10+i), tensor.Shape(shape).Numel())
		if ec.scale != 0 {
			for j := range v {
				v[j] *= ec.scale
			}
		}
		if ec.prep != nil {
			ec.prep(i, v)
		}
		x := tensor.FromFloat64(g, d, shape, v)
		gin = append(gin, x)
		cin = append(cin, tensor.FromFloat64(c, tensor.Float64, shape, x.Float64s())) // as rounded on the GPU
	}
	run := func(b tensor.Backend, d tensor.DType, in []*tensor.Tensor) (out, grad []float64) {
		tape := tensor.NewTape()
		if ec.grad {
			in = append([]*tensor.Tensor(nil), in...)
			in[0] = tape.Track(in[0])
		}
		y := ec.f(in)
		out = y.Float64s()
		if ec.grad {
			r := backendtest.Randn(b, d, 99, y.Shape()...)
			gs, err := tape.Backward(y.Mul(r).Sum(), in[0])
			if err != nil {
				t.Fatal(err)
			}
			grad = gs[0].Float64s()
		}
		return out, grad
	}
	wantOut, wantGrad := run(c, tensor.Float64, cin)
	gotOut, gotGrad := run(g, d, gin)
	syncOK(t, g)
	backendtest.AssertCloseValues(t, gotOut, wantOut, tol)
	if ec.grad {
		backendtest.AssertCloseValues(t, gotGrad, wantGrad, tol)
	}
}

// An id past the table is reported at Sync, naming the op; the backend then works on.
func TestGatherReportsBadID(t *testing.T) {
	g := device(t)
	table := backendtest.Randn(g, tensor.Float32, 1, 10, 4)
	ids := tensor.FromInt32(g, tensor.Shape{3}, []int32{1, 12, 3})
	tensor.Embedding(table, ids)
	err := g.Sync()
	if err == nil || !strings.Contains(err.Error(), "id 12 at position 1") {
		t.Fatalf("Sync() = %v, want an out-of-range id error", err)
	}
	ok := tensor.Embedding(table, tensor.FromInt32(g, tensor.Shape{1}, []int32{9}))
	syncOK(t, g)
	backendtest.AssertCloseValues(t, ok.Float64s(), table.Narrow(0, 9, 1).Float64s(), 0)
}

// Freed buffers come back from the cache: a loop that frees what it
// allocates ends where it started and peaks at one iteration's buffers.
func TestAllocatorReuse(t *testing.T) {
	g := device(t)
	mem, ok := g.(interface {
		MemoryStats() (inUse, peak int64)
		ResetPeak()
	})
	if !ok {
		t.Fatalf("%T has no MemoryStats", g)
	}
	syncOK(t, g)
	mem.ResetPeak()
	before, _ := mem.MemoryStats()
	for i := range 100 {
		x := tensor.Zeros(g, tensor.Float32, 1<<20)
		y := x.Affine(1, float64(i))
		if i == 99 {
			if v := y.Float64s()[5]; v != 99 {
				t.Fatalf("zeros + 99 = %v", v)
			}
		}
		x.Free()
		y.Free()
	}
	syncOK(t, g)
	after, peak := mem.MemoryStats()
	if after > before || peak-before > 8<<20 {
		t.Fatalf("in use %d → %d bytes, peak %d above the start: freed buffers are not reused", before, after, peak-before)
	}
}
