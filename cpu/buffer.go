package cpu

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

type float interface{ float32 | float64 }

// floatBuf holds compute elements.
type floatBuf[T float] struct{ v []T }

func (b *floatBuf[T]) DType() tensor.DType {
	var z T
	if _, ok := any(z).(float64); ok {
		return tensor.Float64
	}
	return tensor.Float32
}
func (b *floatBuf[T]) Len() int { return len(b.v) }

// halfBuf holds float16 or bfloat16 bits (storage only).
type halfBuf struct {
	bits  []uint16
	dtype tensor.DType
}

func (b *halfBuf) DType() tensor.DType { return b.dtype }
func (b *halfBuf) Len() int            { return len(b.bits) }

// intBuf holds indices.
type intBuf struct{ v []int32 }

func (b *intBuf) DType() tensor.DType { return tensor.Int32 }
func (b *intBuf) Len() int            { return len(b.v) }

func wrap[T float](v []T) tensor.Buffer { return &floatBuf[T]{v} }

// vals returns the elements of a compute buffer, or nil when x is nil.
func vals[T float](op string, x tensor.Buffer) []T {
	if x == nil {
		return nil
	}
	b, ok := x.(*floatBuf[T])
	if !ok {
		var z T
		panic(fmt.Sprintf("cpu: %s: buffer of %s where %T was expected (convert storage dtypes first)", op, x.DType(), z))
	}
	return b.v
}

func ints(op string, x tensor.Buffer) []int32 {
	b, ok := x.(*intBuf)
	if !ok {
		panic(fmt.Sprintf("cpu: %s: buffer of %s where int32 was expected", op, x.DType()))
	}
	return b.v
}
