package tensor

import (
	"strings"
	"testing"
)

func TestBroadcastShapes(t *testing.T) {
	for _, c := range []struct {
		a, b, want Shape
		err        bool
	}{
		{Shape{2, 3}, Shape{3}, Shape{2, 3}, false},
		{Shape{2, 1, 4}, Shape{3, 1}, Shape{2, 3, 4}, false},
		{Shape{}, Shape{5}, Shape{5}, false},
		{Shape{2, 3}, Shape{4}, nil, true},
	} {
		got, err := BroadcastShapes(c.a, c.b)
		if (err != nil) != c.err || (!c.err && !got.Equal(c.want)) {
			t.Errorf("BroadcastShapes(%v, %v) = %v, %v; want %v", c.a, c.b, got, err, c.want)
		}
	}
}

func TestParseDType(t *testing.T) {
	for s, want := range map[string]DType{"fp16": Float16, "BF16": BFloat16, "float32": Float32, "f64": Float64} {
		if got, err := ParseDType(s); err != nil || got != want {
			t.Errorf("ParseDType(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseDType("int8"); err == nil || !strings.Contains(err.Error(), "fp32, fp16, bf16") {
		t.Errorf("unknown dtype: %v", err)
	}
}

func TestHalfConversions(t *testing.T) {
	// NaN stays NaN in bfloat16 (a naive round-to-nearest-even could carry into Inf).
	nan := Float32ToBFloat16(float32(nanF64()))
	if v := BFloat16ToFloat32(nan); v == v {
		t.Fatalf("bf16(NaN) = %v", v)
	}
	if got := Float16ToFloat32(Float32ToFloat16(1.5)); got != 1.5 {
		t.Fatalf("f16 round trip of 1.5 = %v", got)
	}
}

func nanF64() float64 {
	zero := 0.0
	return zero / zero
}
