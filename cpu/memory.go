package cpu

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// Alloc returns n zeroed elements of dtype d.
func (*Backend) Alloc(d tensor.DType, n int) tensor.Buffer {
	switch d {
	case tensor.Float32:
		return wrap(make([]float32, n))
	case tensor.Float64:
		return wrap(make([]float64, n))
	case tensor.Float16, tensor.BFloat16:
		return &halfBuf{bits: make([]uint16, n), dtype: d}
	case tensor.Int32:
		return &intBuf{make([]int32, n)}
	}
	panic(fmt.Sprintf("cpu: alloc: dtype %s", d))
}

// FromFloat64 copies v into a new buffer of dtype d.
func (*Backend) FromFloat64(d tensor.DType, v []float64) tensor.Buffer { return fromHost(d, v) }

// FromFloat32 copies v into a new buffer of dtype d.
func (*Backend) FromFloat32(d tensor.DType, v []float32) tensor.Buffer { return fromHost(d, v) }

// FromInt32 copies v into a new Int32 buffer.
func (*Backend) FromInt32(v []int32) tensor.Buffer { return &intBuf{append([]int32(nil), v...)} }

func fromHost[S float](d tensor.DType, v []S) tensor.Buffer {
	switch d {
	case tensor.Float32:
		return wrap(convertSlice[S, float32](v))
	case tensor.Float64:
		return wrap(convertSlice[S, float64](v))
	case tensor.Float16, tensor.BFloat16:
		return toHalf(d, v)
	}
	panic(fmt.Sprintf("cpu: from host: dtype %s", d))
}

func convertSlice[S, D float](v []S) []D {
	out := make([]D, len(v))
	for i, x := range v {
		out[i] = D(x)
	}
	return out
}

func toHalf[S float](d tensor.DType, v []S) *halfBuf {
	enc := tensor.Float32ToFloat16
	if d == tensor.BFloat16 {
		enc = tensor.Float32ToBFloat16
	}
	out := &halfBuf{bits: make([]uint16, len(v)), dtype: d}
	parallelFor(len(v), 1<<16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out.bits[i] = enc(float32(v[i]))
		}
	})
	return out
}

func fromHalf[D float](h *halfBuf) []D {
	dec := tensor.Float16ToFloat32
	if h.dtype == tensor.BFloat16 {
		dec = tensor.BFloat16ToFloat32
	}
	out := make([]D, len(h.bits))
	parallelFor(len(out), 1<<16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = D(dec(h.bits[i]))
		}
	})
	return out
}

// FromRaw decodes little-endian elements of dtype src into a buffer of dtype d.
func (c *Backend) FromRaw(d, src tensor.DType, raw []byte) tensor.Buffer {
	n := len(raw) / src.Size()
	if d == src && (d == tensor.Float16 || d == tensor.BFloat16) {
		h := &halfBuf{bits: make([]uint16, n), dtype: d}
		for i := range h.bits {
			h.bits[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
		}
		return h
	}
	switch d {
	case tensor.Float64:
		v := make([]float64, n)
		decodeParallel(v, src, raw)
		return wrap(v)
	case tensor.Float32:
		v := make([]float32, n)
		decodeParallel(v, src, raw)
		return wrap(v)
	case tensor.Float16, tensor.BFloat16:
		v := make([]float32, n)
		decodeParallel(v, src, raw)
		return toHalf(d, v)
	}
	panic(fmt.Sprintf("cpu: from raw: dtype %s", d))
}

func decodeParallel[T float](v []T, src tensor.DType, raw []byte) {
	size := src.Size()
	parallelFor(len(v), 1<<16, func(lo, hi int) {
		tensor.DecodeRaw(v[lo:hi], src, raw[lo*size:hi*size])
	})
}

// Float64s copies a float buffer to the host.
func (*Backend) Float64s(x tensor.Buffer) []float64 { return toHost[float64](x) }

// Float32s copies a float buffer to the host.
func (*Backend) Float32s(x tensor.Buffer) []float32 { return toHost[float32](x) }

// Int32s copies an Int32 buffer to the host.
func (*Backend) Int32s(x tensor.Buffer) []int32 { return append([]int32(nil), ints("int32s", x)...) }

func toHost[D float](x tensor.Buffer) []D {
	switch b := x.(type) {
	case *floatBuf[float32]:
		return convertSlice[float32, D](b.v)
	case *floatBuf[float64]:
		return convertSlice[float64, D](b.v)
	case *halfBuf:
		return fromHalf[D](b)
	}
	panic(fmt.Sprintf("cpu: copy to host: dtype %s", x.DType()))
}

// Convert returns x as dtype d.
func (c *Backend) Convert(x tensor.Buffer, d tensor.DType) tensor.Buffer {
	switch b := x.(type) {
	case *floatBuf[float32]:
		return fromHost(d, b.v)
	case *floatBuf[float64]:
		return fromHost(d, b.v)
	case *halfBuf:
		if b.dtype == d {
			return &halfBuf{bits: append([]uint16(nil), b.bits...), dtype: d}
		}
		return fromHost(d, fromHalf[float32](b))
	}
	panic(fmt.Sprintf("cpu: convert: %s to %s", x.DType(), d))
}

// Free does nothing: the Go heap reclaims buffers.
func (*Backend) Free(tensor.Buffer) {}
