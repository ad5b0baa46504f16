package tensor

import (
	"fmt"
	"strings"
)

// DType is the element type of a buffer.
type DType uint8

const (
	// Float32 is the compute and storage type of the CPU backend.
	Float32 DType = iota
	// Float64 is used by gradient checks and float64 reference runs on the CPU.
	Float64
	// Float16 is IEEE half precision; on the CPU it is a storage type only.
	Float16
	// BFloat16 is bfloat16; on the CPU it is a storage type only.
	BFloat16
	// Int32 holds indices (token ids, top-k positions); no arithmetic runs on it.
	Int32
)

var dtypeNames = [...]string{Float32: "f32", Float64: "f64", Float16: "f16", BFloat16: "bf16", Int32: "i32"}
var dtypeSizes = [...]int{Float32: 4, Float64: 8, Float16: 2, BFloat16: 2, Int32: 4}

// Size is the number of bytes of one element.
func (d DType) Size() int { return dtypeSizes[d] }

// String is the short name used on the command line (f32, f16, bf16, ...).
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", d)
}

// ParseDType accepts the names of String plus the common long spellings
// (fp32, float16, bfloat16, ...).
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "f32", "fp32", "float32", "float":
		return Float32, nil
	case "f64", "fp64", "float64", "double":
		return Float64, nil
	case "f16", "fp16", "float16", "half":
		return Float16, nil
	case "bf16", "bfloat16":
		return BFloat16, nil
	case "i32", "int32":
		return Int32, nil
	}
	return 0, fmt.Errorf("tensor: unknown dtype %q (want fp32, fp16, bf16 or fp64)", s)
}
