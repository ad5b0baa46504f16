//go:build cuda

package cuda

/*
#include <stdlib.h>
#include "driver.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/rfnet/rfnet-native/tensor"
)

// Alloc returns n zeroed elements (all-zero bits are zero in every dtype).
func (g *Backend) Alloc(d tensor.DType, n int) tensor.Buffer {
	x := g.newBuffer(d, n)
	g.memset(x, 0)
	return x
}

// FromFloat64 copies v to the device as dtype d (rounded on the host).
func (g *Backend) FromFloat64(d tensor.DType, v []float64) tensor.Buffer {
	return g.upload(d, len(v), tensor.EncodeRaw(d, v))
}

// FromFloat32 copies v to the device as dtype d (rounded on the host).
func (g *Backend) FromFloat32(d tensor.DType, v []float32) tensor.Buffer {
	return g.upload(d, len(v), tensor.EncodeRaw(d, v))
}

// FromInt32 copies v into a new Int32 buffer.
func (g *Backend) FromInt32(v []int32) tensor.Buffer {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return g.upload(tensor.Int32, len(v), raw)
}

// FromRaw uploads a safetensors payload of dtype src and converts it to d on
// the device (so a half-precision checkpoint crosses the bus at 2 bytes per weight).
func (g *Backend) FromRaw(d, src tensor.DType, raw []byte) tensor.Buffer {
	n := len(raw) / src.Size()
	switch {
	case d == src:
		return g.upload(d, n, raw)
	case d == tensor.Float64 || src == tensor.Float64:
		v := make([]float64, n)
		tensor.DecodeRaw(v, src, raw)
		return g.FromFloat64(d, v)
	}
	tmp := g.upload(src, n, raw)
	defer g.Free(tmp)
	return g.Convert(tmp, d)
}

// upload copies raw (n elements of d) into a new buffer.
func (g *Backend) upload(d tensor.DType, n int, raw []byte) *buffer {
	x := g.newBuffer(d, n)
	if x.ptr == 0 || len(raw) == 0 {
		return x
	}
	if r := C.rf_memcpy_htod(x.ptr, unsafe.Pointer(&raw[0]), C.size_t(len(raw))); r != 0 {
		g.fail(fmt.Errorf("cuda: upload %d elements of %s: %w", n, d, driverError("copy to device", r)))
	}
	return x
}

// download copies x to the host. It waits for the queued work, so a kernel
// fault surfaces here as well as at Sync; after an error it returns zeros.
func (g *Backend) download(x *buffer) []byte {
	raw := make([]byte, x.bytes())
	if x.ptr == 0 || len(raw) == 0 || g.failed() {
		return raw
	}
	if r := C.rf_memcpy_dtoh(unsafe.Pointer(&raw[0]), x.ptr, C.size_t(len(raw))); r != 0 {
		g.fail(fmt.Errorf("cuda: download %d elements of %s: %w", x.n, x.dtype, driverError("copy to host", r)))
	}
	return raw
}

// Float64s copies a float buffer to the host.
func (g *Backend) Float64s(x tensor.Buffer) []float64 {
	d := dev("float64s", x)
	v := make([]float64, d.n)
	tensor.DecodeRaw(v, d.dtype, g.download(d))
	return v
}

// Float32s copies a float buffer to the host.
func (g *Backend) Float32s(x tensor.Buffer) []float32 {
	d := dev("float32s", x)
	v := make([]float32, d.n)
	tensor.DecodeRaw(v, d.dtype, g.download(d))
	return v
}

// Int32s copies an Int32 buffer to the host.
func (g *Backend) Int32s(x tensor.Buffer) []int32 {
	d := dev("int32s", x)
	if d.dtype != tensor.Int32 {
		panic(fmt.Sprintf("cuda: int32s: buffer of %s", d.dtype))
	}
	raw := g.download(d)
	v := make([]int32, d.n)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

// Convert returns x as dtype d: a device copy for the same dtype, a kernel
// between f32, f16 and bf16, the host for f64 storage.
func (g *Backend) Convert(x tensor.Buffer, d tensor.DType) tensor.Buffer {
	s := dev("convert", x)
	if s.dtype == tensor.Int32 || d == tensor.Int32 {
		if s.dtype != d {
			panic(fmt.Sprintf("cuda: convert %s to %s", s.dtype, d))
		}
	}
	if s.dtype == d {
		y := g.newBuffer(d, s.n)
		if y.ptr != 0 && s.ptr != 0 && s.bytes() > 0 {
			if r := C.rf_memcpy_dtod(y.ptr, s.ptr, C.size_t(s.bytes())); r != 0 {
				g.fail(driverError("copy on device", r))
			}
		}
		return y
	}
	if s.dtype == tensor.Float64 || d == tensor.Float64 {
		return g.FromFloat64(d, g.Float64s(s))
	}
	y := g.newBuffer(d, s.n)
	name := "convert" + suffix(s.dtype) + suffix(d)
	// 8 elements per thread where aligned (kernels/memory.cu).
	g.run(name, linear(int64((s.n+7)/8)), new(args).ptr(y.ptr).ptr(s.ptr).i64(int64(s.n)), fmt.Sprintf("%d elements", s.n))
	return y
}

// Free returns x's memory to the cache now rather than when the collector finds it.
func (g *Backend) Free(x tensor.Buffer) {
	d, ok := x.(*buffer)
	if !ok || d.freed {
		return
	}
	d.freed = true
	if d.ptr != 0 {
		d.cleanup.Stop()
		g.mem.release(d.ptr, d.size)
		d.ptr = 0
	}
}
