//go:build cuda

package cuda

/*
#cgo LDFLAGS: -ldl
#include "driver.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/rfnet/rfnet-native/tensor"
)

// Compiled reports whether this binary has the CUDA backend (the cuda build tag).
const Compiled = true

// Backend is the CUDA backend: one device, its primary context, one stream.
type Backend struct {
	opts    Options
	name    string
	cublas  string // the cuBLAS library in use, "" for the built-in GEMM
	mem     *allocator
	kernels *kernels
	prof    atomic.Pointer[profiler] // set while Profile runs
	scopeMu sync.Mutex
	scope   scopes // tensor.Scoped calls in progress
	graph   graphs // CUDA graphs (graph.go)
	// convPath is a Conv2dPath: RFNET_CONV, or SetConv2dPath.
	convPath atomic.Int32

	mu  sync.Mutex
	err error // the first error since the last Sync
}

var (
	_ tensor.Backend        = (*Backend)(nil)
	_ tensor.MemoryReporter = (*Backend)(nil)
)

// The backend of this process: the driver state is global, so the first New
// opens it and later calls get the same one (or the same error).
var (
	openMu     sync.Mutex
	openedWith *Options // nil until the first New
	opened     *Backend
	openErr    error
)

// New opens the GPU once per process. A later call gets the same backend, or
// the first call's error, when it asks for the same device and TF32 setting,
// and an error naming both settings when it asks for others (reopenError).
func New(o Options) (tensor.Backend, error) {
	openMu.Lock()
	defer openMu.Unlock()
	if openedWith == nil {
		openedWith = &o
		opened, openErr = open(o)
	} else if err := reopenError(*openedWith, o); err != nil {
		return nil, err
	}
	if openErr != nil {
		return nil, openErr
	}
	return opened, nil
}

func open(o Options) (*Backend, error) {
	var msg [512]C.char
	if r := C.rf_open(C.int(o.Ordinal), &msg[0], C.size_t(len(msg))); r != 0 {
		return nil, fmt.Errorf("cuda: %s: %w", C.GoString(&msg[0]), tensor.ErrNoDevice)
	}
	var name [256]C.char
	var total C.size_t
	var major, minor, driver C.int
	if r := C.rf_device_info(&name[0], C.size_t(len(name)), &total, &major, &minor, &driver); r != 0 {
		return nil, driverError("device info", r)
	}
	if major < 8 {
		return nil, fmt.Errorf("cuda: %s has compute capability %d.%d; this build targets 8.0 and newer (Ampere, Ada, Hopper): %w",
			C.GoString(&name[0]), major, minor, tensor.ErrUnsupported)
	}
	g := &Backend{opts: o, mem: newAllocator()}
	g.graph.off = graphsOff(o)
	path, err := convPathFromEnv()
	if err != nil {
		return nil, err
	}
	g.convPath.Store(int32(path))
	g.name = fmt.Sprintf("cuda:%d %s (sm_%d%d, %.0f GiB, driver %d.%d)", o.Ordinal, C.GoString(&name[0]), major, minor,
		float64(total)/(1<<30), driver/1000, (driver%1000)/10)
	if g.kernels, err = loadKernels(); err != nil {
		return nil, err
	}
	var which [64]C.char
	if C.rf_cublas_open(&which[0], C.size_t(len(which))) == 0 {
		g.cublas = C.GoString(&which[0])
	}
	return g, nil
}

// Name describes the device and the GEMM in use.
func (g *Backend) Name() string {
	gemm := "built-in tensor-core GEMM"
	if g.cublas != "" {
		gemm = g.cublas
	}
	return g.name + ", " + gemm
}

// Computes is true for Float32, Float16 and BFloat16.
func (g *Backend) Computes(d tensor.DType) bool { return computes(d) }

// Sync waits for the stream and returns the first error since the last Sync.
func (g *Backend) Sync() error {
	if r := C.rf_sync(); r != 0 {
		g.fail(driverError("synchronize", r))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.err
	g.err = nil
	return err
}

// fail keeps the first error (the CUDA backend reports errors at Sync).
func (g *Backend) fail(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
}

// failed reports whether an error is pending: ops then do nothing until Sync.
func (g *Backend) failed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err != nil
}

func driverError(what string, r C.CUresult) error {
	return fmt.Errorf("cuda: %s: %s (CUDA error %d)", what, C.GoString(C.rf_error_string(r)), int(r))
}

// MemoryStats reports the bytes in use and their peak since the last ResetPeak.
func (g *Backend) MemoryStats() (inUse, peak int64) { return g.mem.stats() }

// AllocStats returns the allocator's counts.
func (g *Backend) AllocStats() AllocStats { return g.mem.counts() }

// ResetPeak restarts the peak measurement.
func (g *Backend) ResetPeak() { g.mem.resetPeak() }

// AvailableMemory is the device's free memory as the driver reports it plus
// the blocks the allocator holds in its cache (free to reuse, and returned to
// the driver before an allocation gives up).
func (g *Backend) AvailableMemory() (int64, error) {
	var free, total C.size_t
	if r := C.rf_mem_info(&free, &total); r != 0 {
		return 0, driverError("memory info", r)
	}
	g.mem.mu.Lock()
	cached := g.mem.cached
	g.mem.mu.Unlock()
	return int64(free) + cached, nil
}
