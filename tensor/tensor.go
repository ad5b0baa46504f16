package tensor

import (
	"fmt"
)

// Tensor is a contiguous row-major array on one backend. Tensors are values to
// pass around: ops return new tensors and never modify their inputs.
type Tensor struct {
	shape Shape
	buf   Buffer
	b     Backend
	node  *node // set when the tensor is tracked by an active tape
}

// Wrap makes a tensor of buf with the given shape; backends and loaders use it.
func Wrap(b Backend, buf Buffer, shape Shape) *Tensor {
	if buf.Len() != shape.Numel() {
		panic(fmt.Sprintf("tensor: wrap: buffer of %d elements for shape %v", buf.Len(), shape))
	}
	return &Tensor{shape: shape.Clone(), buf: buf, b: b}
}

// Zeros returns a zero tensor.
func Zeros(b Backend, d DType, shape ...int) *Tensor {
	return Wrap(b, b.Alloc(d, Shape(shape).Numel()), shape)
}

// Full returns a tensor with every element v.
func Full(b Backend, d DType, v float64, shape ...int) *Tensor {
	return Zeros(b, d, shape...).Affine(0, v)
}

// FromFloat64 copies data into a new tensor of dtype d.
func FromFloat64(b Backend, d DType, shape Shape, data []float64) *Tensor {
	checkLen("from_float64", shape, len(data))
	return Wrap(b, b.FromFloat64(d, data), shape)
}

// FromFloat32 copies data into a new tensor of dtype d.
func FromFloat32(b Backend, d DType, shape Shape, data []float32) *Tensor {
	checkLen("from_float32", shape, len(data))
	return Wrap(b, b.FromFloat32(d, data), shape)
}

// FromInt32 copies ids into a new Int32 tensor.
func FromInt32(b Backend, shape Shape, ids []int32) *Tensor {
	checkLen("from_int32", shape, len(ids))
	return Wrap(b, b.FromInt32(ids), shape)
}

// Move returns t's values on backend b with t's dtype (t itself when it is
// already there): inputs prepared on the host side, such as stored initial
// latents, go to the model's device this way. Values cross exactly.
func (t *Tensor) Move(b Backend) *Tensor {
	if t.b == b {
		return t
	}
	switch d := t.DType(); d {
	case Int32:
		return FromInt32(b, t.shape, t.b.Int32s(t.buf))
	case Float64:
		return FromFloat64(b, d, t.shape, t.Float64s())
	default:
		return FromFloat32(b, d, t.shape, t.Float32s())
	}
}

func checkLen(op string, shape Shape, n int) {
	if shape.Numel() != n {
		panic(fmt.Sprintf("tensor: %s: %d values for shape %v", op, n, shape))
	}
}

// Shape returns a copy of the tensor's shape.
func (t *Tensor) Shape() Shape { return t.shape.Clone() }

// Dim is the size of axis i (negative counts from the end).
func (t *Tensor) Dim(i int) int { return t.shape[t.shape.axis("dim", i)] }

// Rank is the number of axes.
func (t *Tensor) Rank() int { return len(t.shape) }

// Numel is the number of elements.
func (t *Tensor) Numel() int { return t.shape.Numel() }

// DType is the element type.
func (t *Tensor) DType() DType { return t.buf.DType() }

// Backend is the backend that holds the tensor.
func (t *Tensor) Backend() Backend { return t.b }

// Buffer is the underlying buffer, for backends and loaders.
func (t *Tensor) Buffer() Buffer { return t.buf }

// Float64s copies the elements to the host.
func (t *Tensor) Float64s() []float64 { return t.b.Float64s(t.buf) }

// Float32s copies the elements to the host.
func (t *Tensor) Float32s() []float32 { return t.b.Float32s(t.buf) }

// Int32s copies the elements of an Int32 tensor to the host.
func (t *Tensor) Int32s() []int32 { return t.b.Int32s(t.buf) }

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() float64 {
	if t.Numel() != 1 {
		panic(fmt.Sprintf("tensor: item: shape %v has %d elements", t.shape, t.Numel()))
	}
	return t.Float64s()[0]
}

// Free releases the buffer early (it matters on GPUs). The tensor must not be used afterwards.
func (t *Tensor) Free() {
	if t.node == nil {
		t.b.Free(t.buf)
	}
}

// String summarizes the tensor (shape, dtype, backend), not its values.
func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor%v %s on %s", t.shape, t.DType(), t.b.Name())
}

// To converts the tensor to dtype d. The conversion passes gradients through.
func (t *Tensor) To(d DType) *Tensor {
	if t.DType() == d {
		return t
	}
	out := t.derive(t.b.Convert(t.buf, d), t.shape)
	record(OpConvert, out, []*Tensor{t}, nil, nil)
	return out
}

// derive wraps a buffer computed from t on t's backend.
func (t *Tensor) derive(buf Buffer, shape Shape) *Tensor {
	return &Tensor{shape: shape.Clone(), buf: buf, b: t.b}
}
