package backendtest

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// ParityTol is the tolerance of RunParity for each compute dtype: the
// largest difference from the float64 reference, relative to max(1, |want|).
// float32 leaves room for reordered sums; f16 (11 significant bits) and
// bf16 (8) for rounding every stored intermediate. TF32Tol replaces the
// float32 figure when float32 products run on TF32 tensor cores.
var ParityTol = map[tensor.DType]float64{tensor.Float32: 1e-5, tensor.Float16: 1e-2, tensor.BFloat16: 1e-2}

// ModelTol is the tolerance of whole-model results (relative L2 of a text
// encoding, a UNet output and its attention maps, a decoded image, a latent
// gradient through the UNet): ParityTol, except in bf16. The bf16 kernels are
// the f16 ones (templates on the element type, held to 1e-2 per op in both),
// but every activation keeps 8 significant bits instead of 11: through the
// tiny UNet that is about 8× f16's error (measured on the CUDA emulator: f16
// at most 4e-3; bf16 2.4e-2 on the UNet output, up to 8e-2 on attention maps,
// whose logits amplify the error of q and k, 5.4e-2 on the box-loss
// gradient; scores in float32 do not help: the error is already in q and k).
var ModelTol = map[tensor.DType]float64{tensor.Float32: 1e-5, tensor.Float16: 1e-2, tensor.BFloat16: 1e-1}

// TF32Tol is the float32 tolerance of one op whose products run on TF32
// tensor cores (10-bit mantissas in the products, float sums).
const TF32Tol = 1e-3

// TF32ModelTol is the float32 whole-model tolerance on TF32: f16's ModelTol,
// since every product carries f16's 10-bit mantissa. 1e-3 does not hold
// through a model: measured on the CUDA emulator (whose cuBLAS rounds float32
// inputs to TF32 as the hardware does), the tiny UNet output is at 1.0e-3,
// its attention maps up to 1.5e-3, the box-loss gradient at 3.7e-3.
const TF32ModelTol = 1e-2

// RunParity runs every gradient case on b in dtype d and on ref in float64
// (ref being the CPU backend), and compares the outputs and the gradients
// of L = Σ f(inputs)·r for the tracked inputs. The reference starts from
// the device's inputs as stored (rounded to d), so only the arithmetic differs.
func RunParity(t *testing.T, ref, b tensor.Backend, d tensor.DType, tol float64) {
	want, got := gradCasesIn(ref, tensor.Float64), gradCasesIn(b, d)
	for i, c := range got {
		t.Run(c.name, func(t *testing.T) {
			w := want[i]
			for j, x := range c.inputs {
				w.inputs[j] = tensor.FromFloat64(ref, tensor.Float64, x.Shape(), x.Float64s())
			}
			wantOut, wantGrads := evalCase(t, ref, w, tensor.Float64)
			gotOut, gotGrads := evalCase(t, b, c, d)
			t.Run("forward", func(t *testing.T) { AssertCloseValues(t, gotOut, wantOut, tol) })
			for k := range wantGrads {
				AssertCloseValues(t, gotGrads[k], wantGrads[k], tol)
			}
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// evalCase returns f(inputs) and the gradients of Σ f(inputs)·r (r fixed
// random values of dtype d) with respect to the tracked inputs, on the host.
func evalCase(t *testing.T, b tensor.Backend, c gradCase, d tensor.DType) ([]float64, [][]float64) {
	t.Helper()
	out, grads := c.gradients(t, func(out *tensor.Tensor) *tensor.Tensor { return out.Mul(Randn(b, d, 99, out.Shape()...)).Sum() })
	g := make([][]float64, len(grads))
	for i := range grads {
		g[i] = grads[i].Float64s()
	}
	return out.Float64s(), g
}
