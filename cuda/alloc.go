//go:build cuda

package cuda

// #include "driver.h"
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// allocator caches device memory: freed blocks wait in lists by size for the
// next request of that size, so the steady state of a denoising loop (the
// same shapes every step) allocates nothing from the driver. Buffers come back
// when Free is called or when the garbage collector finds their tensor
// unreachable (a cleanup); since the collector does not see device memory,
// a collection is forced every gcEvery bytes of new allocations and before
// giving up on an allocation that does not fit.
type allocator struct {
	mu           sync.Mutex
	free         map[int64][]C.CUdeviceptr
	inUse, peak  int64
	cached       int64
	sinceCollect int64
	// counts since the start, for AllocStats: blocks taken from the driver
	// (cuMemAlloc), and forced collections
	driverAllocs, collects int64
}

const gcEvery = 2 << 30

func newAllocator() *allocator { return &allocator{free: map[int64][]C.CUdeviceptr{}} }

// roundSize groups requests: 512-byte steps below 1 MiB, 1 MiB steps above.
func roundSize(n int64) int64 {
	if n < 1<<20 {
		return (max(n, 1) + 511) &^ 511
	}
	return (n + 1<<20 - 1) &^ (1<<20 - 1)
}

// alloc returns a block of at least n bytes and its rounded size.
func (a *allocator) alloc(n int64) (C.CUdeviceptr, int64, error) {
	size := roundSize(n)
	if p, ok := a.take(size); ok {
		return p, size, nil
	}
	a.mu.Lock()
	collect := a.sinceCollect > gcEvery
	if collect {
		a.sinceCollect = 0
	}
	a.mu.Unlock()
	if collect {
		a.collect()
		if p, ok := a.take(size); ok {
			return p, size, nil
		}
	}
	var p C.CUdeviceptr
	r := C.rf_mem_alloc(&p, C.size_t(size))
	if r == 2 { // CUDA_ERROR_OUT_OF_MEMORY: collect garbage, return the cache to the driver, retry
		a.collect()
		if q, ok := a.take(size); ok {
			return q, size, nil
		}
		a.trim()
		r = C.rf_mem_alloc(&p, C.size_t(size))
	}
	if r != 0 {
		return 0, 0, driverError("allocate "+byteString(size), r)
	}
	a.mu.Lock()
	a.inUse += size
	a.peak = max(a.peak, a.inUse)
	a.sinceCollect += size
	a.driverAllocs++
	a.mu.Unlock()
	return p, size, nil
}

func (a *allocator) take(size int64) (C.CUdeviceptr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.free[size]
	if len(list) == 0 {
		return 0, false
	}
	p := list[len(list)-1]
	a.free[size] = list[:len(list)-1]
	a.cached -= size
	a.inUse += size
	a.peak = max(a.peak, a.inUse)
	return p, true
}

// release puts a block back in the cache.
func (a *allocator) release(p C.CUdeviceptr, size int64) {
	a.mu.Lock()
	a.free[size] = append(a.free[size], p)
	a.inUse -= size
	a.cached += size
	a.mu.Unlock()
}

// collect runs the garbage collector so that unreachable tensors return their
// blocks (cleanups run on their own goroutine, hence the short wait).
func (a *allocator) collect() {
	a.mu.Lock()
	a.collects++
	a.mu.Unlock()
	runtime.GC()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
}

// trim returns every cached block to the driver.
func (a *allocator) trim() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for size, list := range a.free {
		for _, p := range list {
			C.rf_mem_free(p)
		}
		a.cached -= size * int64(len(list))
		delete(a.free, size)
	}
}

func (a *allocator) stats() (inUse, peak int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inUse, a.peak
}

func (a *allocator) counts() AllocStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AllocStats{DriverAllocs: a.driverAllocs, Collects: a.collects}
}

func (a *allocator) resetPeak() {
	a.mu.Lock()
	a.peak = a.inUse
	a.mu.Unlock()
}

// byteString formats a size for messages (1.5 GiB, 12 MiB, 512 B).
func byteString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d B", n)
}
