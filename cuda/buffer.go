//go:build cuda

package cuda

// #include "driver.h"
import "C"

import (
	"fmt"
	"runtime"

	"github.com/rfnet/rfnet-native/tensor"
)

// buffer is device memory holding n elements of dtype. Float64 buffers are
// storage only (the kernels compute in float32, float16 and bfloat16); they
// exist so float64 references and test values can live on any backend.
type buffer struct {
	ptr     C.CUdeviceptr
	size    int64 // bytes reserved (rounded by the allocator)
	n       int
	dtype   tensor.DType
	cleanup runtime.Cleanup
	freed   bool
}

func (x *buffer) DType() tensor.DType { return x.dtype }
func (x *buffer) Len() int            { return x.n }
func (x *buffer) bytes() int64        { return int64(x.n) * int64(x.dtype.Size()) }

// block is what a buffer's cleanup returns to the allocator (not the buffer
// itself, which would keep it reachable).
type block struct {
	ptr  C.CUdeviceptr
	size int64
}

// newBuffer allocates n elements, uninitialized (NaN-filled with
// Options.Poison). An allocation failure is kept for Sync and returns a
// buffer without memory, which the ops skip.
func (g *Backend) newBuffer(d tensor.DType, n int) *buffer {
	x := &buffer{n: n, dtype: d}
	if g.failed() {
		return x
	}
	p, size, err := g.mem.alloc(x.bytes())
	if err != nil {
		g.fail(fmt.Errorf("cuda: %d elements of %s: %w", n, d, err))
		return x
	}
	x.ptr, x.size = p, size
	x.cleanup = runtime.AddCleanup(x, func(blk block) { g.mem.release(blk.ptr, blk.size) }, block{p, size})
	g.recordInScope(x)
	if g.opts.Poison {
		g.memset(x, 0xff) // all-ones bits are NaN in every float dtype
	}
	return x
}

// memset sets every byte of x to v.
func (g *Backend) memset(x *buffer, v byte) {
	if x.ptr == 0 || x.bytes() == 0 {
		return
	}
	if r := C.rf_memset8(x.ptr, C.uchar(v), C.size_t(x.bytes())); r != 0 {
		g.fail(driverError("memset", r))
	}
}

// dev returns x as a device buffer of this backend; op names the caller for the panic.
func dev(op string, x tensor.Buffer) *buffer {
	d, ok := x.(*buffer)
	if !ok {
		panic(fmt.Sprintf("cuda: %s: a %T is not a CUDA buffer (tensors of different backends mixed)", op, x))
	}
	if d.freed {
		panic(fmt.Sprintf("cuda: %s: buffer used after Free", op))
	}
	return d
}

// devOrNil is dev for optional operands (nil stays nil).
func devOrNil(op string, x tensor.Buffer) *buffer {
	if x == nil {
		return nil
	}
	return dev(op, x)
}

// ptrOf is the device address of an optional operand (0 for nil: the kernels
// test their optional pointers).
func ptrOf(x *buffer) C.CUdeviceptr {
	if x == nil {
		return 0
	}
	return x.ptr
}

// computes reports whether the kernels have an instance for d (what
// Computes says to callers).
func computes(d tensor.DType) bool {
	return d == tensor.Float32 || d == tensor.Float16 || d == tensor.BFloat16
}

// suffix is the kernel name suffix of a compute dtype. Callers have checked
// d (same, elemSuffix), so another dtype here is a bug in this package.
func suffix(d tensor.DType) string {
	switch d {
	case tensor.Float32:
		return "_f32"
	case tensor.Float16:
		return "_f16"
	case tensor.BFloat16:
		return "_bf16"
	}
	panic(fmt.Sprintf("cuda: no kernel instance for %s", d))
}

// same checks that the float operands of op share a dtype the kernels
// compute in and returns it.
func same(op string, xs ...*buffer) tensor.DType {
	d := xs[0].dtype
	for _, x := range xs[1:] {
		if x != nil && x.dtype != d {
			panic(fmt.Sprintf("cuda: %s: operands of dtypes %s and %s", op, d, x.dtype))
		}
	}
	if !computes(d) {
		panic(fmt.Sprintf("cuda: %s: the CUDA backend computes in f32, f16 and bf16, not %s", op, d))
	}
	return d
}

// need panics unless x holds n elements (a caller's size bug, as on the CPU).
func need(op string, x *buffer, n int) {
	if x != nil && x.n != n {
		panic(fmt.Sprintf("cuda: %s: buffer of %d elements, want %d", op, x.n, n))
	}
}
