package backendtest

import (
	"fmt"
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// forwardTol is the tolerance of each compute dtype against the float64 references.
var forwardTol = map[tensor.DType]float64{tensor.Float64: 1e-12, tensor.Float32: 2e-5}

func computeDTypes(b tensor.Backend) []tensor.DType {
	var ds []tensor.DType
	for _, d := range []tensor.DType{tensor.Float32, tensor.Float64} {
		if b.Computes(d) {
			ds = append(ds, d)
		}
	}
	return ds
}

// testForward checks every op's forward pass against the references, in each dtype the backend computes.
func testForward(t *testing.T, b tensor.Backend) {
	for _, d := range computeDTypes(b) {
		t.Run(d.String(), func(t *testing.T) {
			tol := forwardTol[d]
			host := func(seed uint64, shape ...int) ([]float64, *tensor.Tensor) {
				v := RandnValues(seed, tensor.Shape(shape).Numel())
				return v, tensor.FromFloat64(b, d, shape, v)
			}
			check := func(t *testing.T, got *tensor.Tensor, wantShape tensor.Shape, want []float64) {
				t.Helper()
				AssertClose(t, got, tensor.FromFloat64(b, tensor.Float64, wantShape, want), tol)
			}

			t.Run("unary", func(t *testing.T) {
				x := tensor.FromFloat64(b, d, tensor.Shape{4}, []float64{-1.5, 0.5, 1, 2})
				// GELU(1) = Φ(1), QuickGELU(1) = σ(1.702), ...: values from the definitions.
				want := map[tensor.UnaryOp][]float64{
					tensor.SiLU:      {-1.5 / (1 + math.Exp(1.5)), 0.5 / (1 + math.Exp(-0.5)), 1 / (1 + math.Exp(-1)), 2 / (1 + math.Exp(-2))},
					tensor.GELU:      {-0.10021080190329, 0.34573123063700, 0.84134474606854, 1.95449973610364},
					tensor.QuickGELU: {-1.5 / (1 + math.Exp(1.5*1.702)), 0.5 / (1 + math.Exp(-0.851)), 1 / (1 + math.Exp(-1.702)), 2 / (1 + math.Exp(-3.404))},
					tensor.Sigmoid:   {1 / (1 + math.Exp(1.5)), 1 / (1 + math.Exp(-0.5)), 1 / (1 + math.Exp(-1)), 1 / (1 + math.Exp(-2))},
					tensor.Exp:       {math.Exp(-1.5), math.Exp(0.5), math.E, math.Exp(2)},
					tensor.Abs:       {1.5, 0.5, 1, 2},
					tensor.Square:    {2.25, 0.25, 1, 4},
				}
				for op, w := range want {
					check(t, x.Unary(op), tensor.Shape{4}, w)
				}
				check(t, x.Abs().Sqrt(), tensor.Shape{4}, []float64{math.Sqrt(1.5), math.Sqrt(0.5), 1, math.Sqrt2})
				check(t, x.Affine(2, -1), tensor.Shape{4}, []float64{-4, 0, 1, 3})
			})

			t.Run("binary_broadcast", func(t *testing.T) {
				av, a := host(1, 2, 3, 4)
				bv, bb := host(2, 3, 1)
				want := make([]float64, 24)
				for i := range want {
					want[i] = av[i] / bv[(i/4)%3]
				}
				check(t, a.Div(bb), tensor.Shape{2, 3, 4}, want)
			})

			t.Run("matmul", func(t *testing.T) {
				for _, c := range []struct {
					m, n, k        int
					transA, transB bool
				}{{3, 5, 4, false, false}, {17, 33, 65, true, false}, {64, 40, 80, false, true}, {130, 70, 90, true, true}} {
					av, a := host(3, c.m*c.k)
					bv, bb := host(4, c.k*c.n)
					ash, bsh := []int{c.m, c.k}, []int{c.k, c.n}
					if c.transA {
						ash = []int{c.k, c.m}
					}
					if c.transB {
						bsh = []int{c.n, c.k}
					}
					got := tensor.MatMulT(a.Reshape(ash...), bb.Reshape(bsh...), c.transA, c.transB)
					check(t, got, tensor.Shape{c.m, c.n}, refMatMul(av, bv, c.m, c.n, c.k, c.transA, c.transB))
				}
				// batched, with the second operand shared across the batch
				av, a := host(5, 3, 4, 6)
				bv, bb := host(6, 6, 2)
				want := make([]float64, 0, 24)
				for i := 0; i < 3; i++ {
					want = append(want, refMatMul(av[i*24:(i+1)*24], bv, 4, 2, 6, false, false)...)
				}
				check(t, a.MatMul(bb), tensor.Shape{3, 4, 2}, want)
			})

			t.Run("conv2d", func(t *testing.T) {
				for _, c := range []struct{ n, c, h, w, o, k, s, p int }{
					{2, 3, 8, 8, 4, 3, 1, 1}, {1, 5, 9, 7, 6, 3, 2, 1}, {2, 8, 5, 5, 3, 1, 1, 0}, {1, 2, 6, 6, 2, 3, 1, 0},
				} {
					t.Run(fmt.Sprintf("%dx%dx%dx%d_k%d_s%d_p%d", c.n, c.c, c.h, c.w, c.k, c.s, c.p), func(t *testing.T) {
						xv, x := host(7, c.n, c.c, c.h, c.w)
						wv, w := host(8, c.o, c.c, c.k, c.k)
						bv, bias := host(9, c.o)
						got := x.Conv2d(w, bias, c.s, c.p)
						want := refConv2d(xv, wv, bv, c.n, c.c, c.h, c.w, c.o, c.k, c.k, c.s, c.p)
						check(t, got, got.Shape(), want)
					})
				}
			})

			t.Run("group_norm", func(t *testing.T) {
				xv, x := host(10, 2, 8, 3, 3)
				gv, g := host(11, 8)
				bv, bias := host(12, 8)
				want := refNormalize(xv, 4*9, 1e-5, gv, bv, func(i int) int { return (i / 9) % 8 })
				check(t, x.GroupNorm(2, g, bias, 1e-5), x.Shape(), want)
			})

			t.Run("layer_norm", func(t *testing.T) {
				xv, x := host(13, 5, 16)
				gv, g := host(14, 16)
				bv, bias := host(15, 16)
				want := refNormalize(xv, 16, 1e-5, gv, bv, func(i int) int { return i % 16 })
				check(t, x.LayerNorm(g, bias, 1e-5), x.Shape(), want)
			})

			t.Run("softmax", func(t *testing.T) {
				xv, x := host(16, 3, 77)
				check(t, x.Softmax(), x.Shape(), refSoftmax(xv, 77))
			})

			t.Run("geglu", func(t *testing.T) {
				xv, x := host(17, 3, 10)
				want := make([]float64, 15)
				for r := 0; r < 3; r++ {
					for i := 0; i < 5; i++ {
						g := xv[r*10+5+i]
						want[r*5+i] = xv[r*10+i] * 0.5 * g * (1 + math.Erf(g/math.Sqrt2))
					}
				}
				check(t, x.GEGLU(), tensor.Shape{3, 5}, want)
			})

			t.Run("layout", func(t *testing.T) {
				xv, x := host(18, 2, 3, 4)
				perm := make([]float64, 0, 24)
				for k := 0; k < 4; k++ {
					for i := 0; i < 2; i++ {
						for j := 0; j < 3; j++ {
							perm = append(perm, xv[(i*3+j)*4+k])
						}
					}
				}
				check(t, x.Permute(2, 0, 1), tensor.Shape{4, 2, 3}, perm)
				nar := make([]float64, 0, 12)
				for i := 0; i < 2; i++ {
					nar = append(nar, xv[i*12+4:i*12+12]...)
				}
				check(t, x.Narrow(1, 1, 2), tensor.Shape{2, 2, 4}, nar)
				cat := make([]float64, 0, 48)
				for i := 0; i < 2; i++ {
					cat = append(cat, xv[i*12:(i+1)*12]...)
					cat = append(cat, xv[i*12:(i+1)*12]...)
				}
				check(t, tensor.Concat(1, x, x), tensor.Shape{2, 6, 4}, cat)
				sum := make([]float64, 8)
				for i, v := range xv {
					sum[(i/12)*4+i%4] += v
				}
				check(t, x.Sum(1), tensor.Shape{2, 4}, sum)
			})

			t.Run("upsample2x", func(t *testing.T) {
				xv, x := host(19, 1, 2, 2, 3)
				want := make([]float64, 48)
				for c := 0; c < 2; c++ {
					for y := 0; y < 4; y++ {
						for xx := 0; xx < 6; xx++ {
							want[(c*4+y)*6+xx] = xv[(c*2+y/2)*3+xx/2]
						}
					}
				}
				check(t, x.Upsample2x(), tensor.Shape{1, 2, 4, 6}, want)
			})

			t.Run("masked_topk_mean", func(t *testing.T) {
				xv, x := host(20, 6, 50)
				mv, m := host(21, 50)
				check(t, x.MaskedTopKMean(m, 10), tensor.Shape{6}, refTopKMean(xv, mv, 50, 10))
				check(t, x.MaskedTopKMean(nil, 1), tensor.Shape{6}, refTopKMean(xv, nil, 50, 1))
			})

			t.Run("attention", func(t *testing.T) {
				for _, c := range []struct{ b, n, m, d int }{{2, 7, 5, 8}, {3, 64, 77, 40}, {1, 33, 33, 160}} {
					qv, q := host(23, c.b, c.n, c.d)
					kv, k := host(24, c.b, c.m, c.d)
					vv, v := host(25, c.b, c.m, c.d)
					scale := 1 / math.Sqrt(float64(c.d))
					var want []float64
					for i := 0; i < c.b; i++ {
						scores := refMatMul(qv[i*c.n*c.d:(i+1)*c.n*c.d], kv[i*c.m*c.d:(i+1)*c.m*c.d], c.n, c.m, c.d, false, true)
						for j := range scores {
							scores[j] *= scale
						}
						want = append(want, refMatMul(refSoftmax(scores, c.m), vv[i*c.m*c.d:(i+1)*c.m*c.d], c.n, c.d, c.m, false, false)...)
					}
					check(t, tensor.Attention(q, k, v, scale), tensor.Shape{c.b, c.n, c.d}, want)
				}
			})

			t.Run("embedding", func(t *testing.T) {
				tv, table := host(22, 5, 3)
				ids := tensor.FromInt32(b, tensor.Shape{2, 2}, []int32{4, 0, 4, 2})
				want := append(append(append(append([]float64{}, tv[12:15]...), tv[0:3]...), tv[12:15]...), tv[6:9]...)
				check(t, tensor.Embedding(table, ids), tensor.Shape{2, 2, 3}, want)
			})
		})
	}
}
