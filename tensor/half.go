package tensor

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"
)

// Float16FromBits and the other helpers here convert single elements between the
// storage dtypes and float32 on the host. IEEE half precision goes through
// github.com/x448/float16 (exact, round-to-nearest-even). bfloat16 is the upper
// half of a float32, so its two conversions are written out below.

// Float16ToFloat32 widens IEEE half-precision bits.
func Float16ToFloat32(h uint16) float32 { return float16.Frombits(h).Float32() }

// Float32ToFloat16 rounds to the nearest IEEE half (ties to even).
func Float32ToFloat16(f float32) uint16 { return float16.Fromfloat32(f).Bits() }

// BFloat16ToFloat32 widens bfloat16 bits.
func BFloat16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBFloat16 rounds to the nearest bfloat16 (ties to even), keeping NaN a NaN.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// DecodeRaw widens n little-endian elements of dtype src into dst (float32 or float64).
func DecodeRaw[T float32 | float64](dst []T, src DType, raw []byte) {
	if len(raw) != len(dst)*src.Size() {
		panic(fmt.Sprintf("tensor: decode %s: %d bytes for %d elements", src, len(raw), len(dst)))
	}
	le := binary.LittleEndian
	switch src {
	case Float32:
		for i := range dst {
			dst[i] = T(math.Float32frombits(le.Uint32(raw[4*i:])))
		}
	case Float64:
		for i := range dst {
			dst[i] = T(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
	case Float16:
		for i := range dst {
			dst[i] = T(Float16ToFloat32(le.Uint16(raw[2*i:])))
		}
	case BFloat16:
		for i := range dst {
			dst[i] = T(BFloat16ToFloat32(le.Uint16(raw[2*i:])))
		}
	default:
		panic(fmt.Sprintf("tensor: decode: %s is not a float dtype", src))
	}
}

// EncodeRaw writes v as little-endian elements of dtype d (the inverse of DecodeRaw).
func EncodeRaw[T float32 | float64](d DType, v []T) []byte {
	raw := make([]byte, len(v)*d.Size())
	le := binary.LittleEndian
	switch d {
	case Float32:
		for i, x := range v {
			le.PutUint32(raw[4*i:], math.Float32bits(float32(x)))
		}
	case Float64:
		for i, x := range v {
			le.PutUint64(raw[8*i:], math.Float64bits(float64(x)))
		}
	case Float16:
		for i, x := range v {
			le.PutUint16(raw[2*i:], Float32ToFloat16(float32(x)))
		}
	case BFloat16:
		for i, x := range v {
			le.PutUint16(raw[2*i:], Float32ToBFloat16(float32(x)))
		}
	default:
		panic(fmt.Sprintf("tensor: encode: %s is not a float dtype", d))
	}
	return raw
}
