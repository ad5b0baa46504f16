package backendtest

import (
	"math"
	"slices"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// testMemory checks the copies and conversions (FromFloat32, Float32s,
// FromRaw, Convert) on the storage dtypes: rounding to nearest even on the way
// in, exact widening on the way out, raw (safetensors) decoding, and conversions.
func testMemory(t *testing.T, b tensor.Backend) {
	in := []float32{1.0 / 3, 1 + 0x1p-8, 1 + 3*0x1p-8, 1 + 0x1p-11, 1 + 3*0x1p-11, -2.5, 65520, 1e-8}
	want := map[tensor.DType][]float32{
		// f16: 10 fraction bits; 1+2⁻¹¹ is a tie (to even, 1), 65520 overflows, 1e-8 underflows to 0.
		tensor.Float16: {0.333251953125, 1 + 0x1p-8, 1 + 3*0x1p-8, 1, 1 + 0x1p-9, -2.5, float32(math.Inf(1)), 0},
		// bf16: 7 fraction bits; 1+2⁻⁸ ties down to 1 (even), 1+3·2⁻⁸ ties up to 1+2⁻⁶.
		tensor.BFloat16: {0.333984375, 1, 1 + 0x1p-6, 1, 1, -2.5, 65536, math.Float32frombits(0x322C0000)},
	}
	for d, w := range want {
		t.Run(d.String(), func(t *testing.T) {
			x := tensor.FromFloat32(b, d, tensor.Shape{len(in)}, in)
			got := x.Float32s()
			for i := range w {
				if got[i] != w[i] {
					t.Errorf("%s(%v) = %v, want %v", d, in[i], got[i], w[i])
				}
			}
			raw := tensor.EncodeRaw(d, in)
			for _, to := range computeDTypes(b) {
				y := tensor.Wrap(b, b.FromRaw(to, d, raw), tensor.Shape{len(in)})
				if g := y.Float32s(); !slices.Equal(g, w) {
					t.Errorf("from raw %s to %s: %v, want %v", d, to, g, w)
				}
				if g := x.To(to).To(d).To(to).Float32s(); !slices.Equal(g, w) {
					t.Errorf("round trip %s→%s: %v, want %v", d, to, g, w)
				}
			}
			if g := tensor.Wrap(b, b.FromRaw(d, d, raw), tensor.Shape{len(in)}).Float32s(); !slices.Equal(g, w) {
				t.Errorf("raw %s kept as %s: %v, want %v", d, d, g, w)
			}
		})
	}
}
