package backendtest

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// testGatherForward checks Gather through tensor.Embedding.
func testGatherForward(t *testing.T, f forward) {
	tv, table := f.host(22, 5, 3)
	ids := tensor.FromInt32(f.b, tensor.Shape{2, 2}, []int32{4, 0, 4, 2})
	want := append(append(append(append([]float64{}, tv[12:15]...), tv[0:3]...), tv[12:15]...), tv[6:9]...)
	f.check(t, tensor.Embedding(table, ids), tensor.Shape{2, 2, 3}, want)
}
