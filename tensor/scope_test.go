package tensor_test

import (
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// On a backend without scopes (the CPU's) Scoped just runs its function, and
// a FLOPCounter around one still counts.
func TestScopedWithoutScopes(t *testing.T) {
	c := tensor.CountFLOPs(cpu.New())
	x := tensor.FromFloat64(c, tensor.Float32, tensor.Shape{2, 2}, []float64{1, 2, 3, 4})
	out := tensor.Scoped(c, func() *tensor.Tensor { return tensor.MatMulT(x, x, false, false) })
	if got := out.Float64s(); got[0] != 7 || got[3] != 22 {
		t.Fatalf("scoped matmul = %v", got)
	}
	if c.FLOPs() == 0 {
		t.Fatal("the counter counted nothing under Scoped")
	}
}
