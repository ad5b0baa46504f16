//go:build cuda

package cuda

/*
#include <stdlib.h>
#include "driver.h"
*/
import "C"

import (
	"embed"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"sync"
	"unsafe"

	"github.com/rfnet/rfnet-native/tensor"
)

// The kernels of kernels/*.cu, one fatbin each, built by `make kernels`.
//
//go:embed fatbin/*.fatbin
var fatbins embed.FS

// kernels are the loaded modules and the functions looked up so far.
type kernels struct {
	modules map[string]unsafe.Pointer // by source file
	mu      sync.Mutex
	fns     map[string]unsafe.Pointer
}

func loadKernels() (*kernels, error) {
	k := &kernels{modules: map[string]unsafe.Pointer{}, fns: map[string]unsafe.Pointer{}}
	files, _ := fs.Glob(fatbins, "fatbin/*.fatbin")
	if len(files) == 0 {
		return nil, fmt.Errorf("cuda: no kernels embedded (build with `make cuda`)")
	}
	for _, f := range files {
		image, err := fatbins.ReadFile(f)
		if err != nil {
			return nil, err
		}
		cimg := C.CBytes(image) // kept for the life of the process
		var mod unsafe.Pointer
		if r := C.rf_module_load(&mod, cimg); r != 0 {
			return nil, fmt.Errorf("cuda: load module %s: %s (CUDA error %d; a card older than sm_80, or a driver too old for the PTX?)",
				f, C.GoString(C.rf_error_string(r)), int(r))
		}
		k.modules[strings.TrimSuffix(strings.TrimPrefix(f, "fatbin/"), ".fatbin")] = mod
	}
	return k, nil
}

// fn finds a kernel by name in any module.
func (k *kernels) fn(name string) (unsafe.Pointer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.fns[name]; ok {
		return f, nil
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	for _, mod := range k.modules {
		var f unsafe.Pointer
		if C.rf_module_function(&f, mod, cname) == 0 {
			k.fns[name] = f
			return f, nil
		}
	}
	var mods []string
	for m := range k.modules {
		mods = append(mods, m)
	}
	return nil, fmt.Errorf("cuda: no kernel %q in the modules %v", name, mods)
}

// args packs kernel arguments with C alignment.
type args struct {
	buf  []byte
	offs []C.int
}

func (a *args) put(b []byte, align int) *args {
	for len(a.buf)%align != 0 {
		a.buf = append(a.buf, 0)
	}
	a.offs = append(a.offs, C.int(len(a.buf)))
	a.buf = append(a.buf, b...)
	return a
}

func (a *args) ptr(p C.CUdeviceptr) *args { return a.u64(uint64(p)) }
func (a *args) u64(v uint64) *args        { return a.put(binary.LittleEndian.AppendUint64(nil, v), 8) }
func (a *args) i64(v int64) *args         { return a.u64(uint64(v)) }
func (a *args) i32(v int32) *args         { return a.put(binary.LittleEndian.AppendUint32(nil, uint32(v)), 4) }
func (a *args) f32(v float32) *args {
	return a.put(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)), 4)
}

// record appends a struct laid out as C lays it out (the caller builds the bytes).
func (a *args) record(b []byte) *args { return a.put(b, 8) }

// div appends a struct Divisor for d (kernels/common.cuh).
func (a *args) div(d int) *args { return a.record(newDivisor(d).bytes()) }

// launch is a kernel launch: grid, block, dynamic shared memory; for
// profiles, the op that asked for it (when the kernel serves several) and
// the FLOPs of its products.
type launch struct {
	grid   [3]int
	block  int
	shared int
	op     string
	flops  float64
}

// linear is the launch of a grid-stride loop over n elements.
func linear(n int64) launch {
	blocks := min((n+255)/256, 1<<20)
	return launch{grid: [3]int{int(max(blocks, 1)), 1, 1}, block: 256}
}

// rowThreads is the block size of the one-block-per-row kernels: enough
// threads to stream long rows, fewer for short ones (a multiple of 32).
func rowThreads(cols int) int {
	switch {
	case cols >= 4096:
		return 512
	case cols >= 512:
		return 256
	}
	return 128
}

// vecLen is how many elements of d one 16-byte access moves (Vec in
// kernels/common.cuh: 8 in f16 and bf16, 4 in f32).
func vecLen(d tensor.DType) int { return 16 / d.Size() }

// linearVec is a launch for n elements of d moved a Vec per thread.
func linearVec(n int, d tensor.DType) launch {
	v := vecLen(d)
	return linear(int64((n + v - 1) / v))
}

// vecAligned reports whether p may be accessed as a Vec (cuMemAlloc's blocks
// are; offsets into them may not be).
func vecAligned(p C.CUdeviceptr) bool { return p%16 == 0 }

// vecLastAxis reports whether a kernel can move Vecs along the last axis of
// an index plan (binary_vec, permute): the axis a whole number of Vecs,
// each input either contiguous along it (then its other strides whole Vecs
// too, and its pointer aligned) or constant along it, and the output
// (ptrs[0]) aligned.
func vecLastAxis(shape []int, strides [][]int, ptrs []C.CUdeviceptr, d tensor.DType) bool {
	v, last := vecLen(d), len(shape)-1
	if shape[last]%v != 0 || !vecAligned(ptrs[0]) {
		return false
	}
	for i, s := range strides {
		switch s[last] {
		case 0:
		case 1:
			if !vecAligned(ptrs[i+1]) {
				return false
			}
			for _, st := range s[:last] {
				if st%v != 0 {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// run launches kernel name; what names the op and its shapes for errors.
func (g *Backend) run(name string, l launch, a *args, what string) {
	if g.failed() || l.grid[0] == 0 || l.grid[1] == 0 || l.grid[2] == 0 {
		return // after an error, or nothing to do
	}
	f, err := g.kernels.fn(name)
	if err != nil {
		g.fail(err)
		return
	}
	if l.shared > 48<<10 {
		if r := C.rf_set_max_shared(f, C.int(l.shared)); r != 0 {
			g.fail(fmt.Errorf("cuda: %s (%s): %d bytes of shared memory: %w", name, what, l.shared, driverError("set attribute", r)))
			return
		}
	}
	// The argument block is Go memory without Go pointers, so C may read it
	// for the call; cuLaunchKernel copies the values before returning.
	prof := g.prof.Load()
	start := prof.begin()
	r := C.rf_launch(f, C.uint(l.grid[0]), C.uint(l.grid[1]), C.uint(l.grid[2]), C.uint(l.block), 1, 1, C.uint(l.shared),
		unsafe.Pointer(&a.buf[0]), &a.offs[0], C.int(len(a.offs)))
	prof.end(start, name, l.op, l.flops)
	if r != 0 {
		g.fail(fmt.Errorf("cuda: launch %s (%s): %w", name, what, driverError("launch", r)))
	}
}
