package backendtest

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func testUnaryForward(t *testing.T, f forward) {
	x := tensor.FromFloat64(f.b, f.d, tensor.Shape{4}, []float64{-1.5, 0.5, 1, 2})
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
		f.check(t, x.Unary(op), tensor.Shape{4}, w)
	}
	f.check(t, x.Abs().Sqrt(), tensor.Shape{4}, []float64{math.Sqrt(1.5), math.Sqrt(0.5), 1, math.Sqrt2})
	f.check(t, x.Affine(2, -1), tensor.Shape{4}, []float64{-4, 0, 1, 3})
}

func testBinaryForward(t *testing.T, f forward) {
	av, a := f.host(1, 2, 3, 4)
	bv, bb := f.host(2, 3, 1)
	want := make([]float64, 24)
	for i := range want {
		want[i] = av[i] / bv[(i/4)%3]
	}
	f.check(t, a.Div(bb), tensor.Shape{2, 3, 4}, want)
}

func testGEGLUForward(t *testing.T, f forward) {
	xv, x := f.host(17, 3, 10)
	want := make([]float64, 15)
	for r := 0; r < 3; r++ {
		for i := 0; i < 5; i++ {
			g := xv[r*10+5+i]
			want[r*5+i] = xv[r*10+i] * 0.5 * g * (1 + math.Erf(g/math.Sqrt2))
		}
	}
	f.check(t, x.GEGLU(), tensor.Shape{3, 5}, want)
}

// testGEGLUBiasForward: the bias is added before the split, and the result
// is exactly the composed x.Add(bias).GEGLU() (the sum rounded as Add rounds it).
func testGEGLUBiasForward(t *testing.T, f forward) {
	xv, x := f.host(61, 3, 10)
	bv, b := f.host(62, 10)
	want := make([]float64, 15)
	for r := 0; r < 3; r++ {
		for i := 0; i < 5; i++ {
			h, g := xv[r*10+i]+bv[i], xv[r*10+5+i]+bv[5+i]
			want[r*5+i] = h * 0.5 * g * (1 + math.Erf(g/math.Sqrt2))
		}
	}
	got := x.GEGLUBias(b)
	f.check(t, got, tensor.Shape{3, 5}, want)
	composed := x.Add(b).GEGLU().Float64s()
	for i, v := range got.Float64s() {
		if v != composed[i] {
			t.Fatalf("element %d: fused %v, composed %v", i, v, composed[i])
		}
	}
}
