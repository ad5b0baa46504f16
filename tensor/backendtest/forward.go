package backendtest

import (
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

// forward is the forward checks' setting: a backend and one dtype it
// computes in. Each op's check lives in the file of the op's name (softmax.go,
// topk.go, ...) beside its reference: plain float64 loops written from the
// op's definition, independent of any backend.
type forward struct {
	b   tensor.Backend
	d   tensor.DType
	tol float64
}

// host returns n seeded values (n the product of shape) and a tensor of them in f's dtype.
func (f forward) host(seed uint64, shape ...int) ([]float64, *tensor.Tensor) {
	v := RandnValues(seed, tensor.Shape(shape).Numel())
	return v, tensor.FromFloat64(f.b, f.d, shape, v)
}

// check compares got with want, of shape wantShape, within f's tolerance.
func (f forward) check(t *testing.T, got *tensor.Tensor, wantShape tensor.Shape, want []float64) {
	t.Helper()
	AssertClose(t, got, tensor.FromFloat64(f.b, tensor.Float64, wantShape, want), f.tol)
}

// forwardChecks are the ops' forward checks, under the names they run as.
var forwardChecks = []struct {
	name string
	run  func(t *testing.T, f forward)
}{
	{"unary", testUnaryForward},
	{"binary_broadcast", testBinaryForward},
	{"matmul", testMatMulForward},
	{"conv2d", testConv2dForward},
	{"conv2d_residual", testConv2dResidualForward},
	{"linear_residual", testLinearResidualForward},
	{"group_norm", testGroupNormForward},
	{"group_norm_silu", testGroupNormSiLUForward},
	{"layer_norm", testLayerNormForward},
	{"softmax", testSoftmaxForward},
	{"geglu", testGEGLUForward},
	{"geglu_bias", testGEGLUBiasForward},
	{"combine", testCombineForward},
	{"layout", testLayoutForward},
	{"reduce_sum", testReduceSumForward},
	{"upsample2x", testUpsample2xForward},
	{"masked_topk_mean", testTopKMeanForward},
	{"attention", testAttentionForward},
	{"attention_heads", testAttentionHeadsForward},
	{"attention_qkv", testAttentionQKVForward},
	{"attention_grad", testAttentionGrad},
	{"gather", testGatherForward},
}

// testForward checks every op's forward pass against its reference, in each dtype the backend computes.
func testForward(t *testing.T, b tensor.Backend) {
	for _, d := range computeDTypes(b) {
		t.Run(d.String(), func(t *testing.T) {
			f := forward{b: b, d: d, tol: forwardTol[d]}
			for _, c := range forwardChecks {
				t.Run(c.name, func(t *testing.T) { c.run(t, f) })
			}
		})
	}
}
