//go:build cuda

package cuda

// #include "driver.h"
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
)

// errCaptureAlloc is an allocation a graph capture could not serve from the cache.
var errCaptureAlloc = errors.New("no allocation from the driver inside a graph capture")

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
	// capture is set while a CUDA graph is captured (graph.go): the blocks
	// taken meanwhile, which become the graph's, and no driver calls.
	capture map[C.CUdeviceptr]int64
	missed  int64 // the size of the first block a capture lacked (0: none)
	// reserved are the blocks of live graphs still held by a buffer: freed,
	// they stay with their graph (a replay writes them) instead of the cache.
	reserved map[C.CUdeviceptr]*graphBlocks
}

// graphBlocks are the blocks a graph's replays write: every block its
// capture took. Those no buffer holds are kept out of the cache until the
// graph is destroyed.
type graphBlocks struct {
	size map[C.CUdeviceptr]int64
}

const gcEvery = 2 << 30

func newAllocator() *allocator {
	return &allocator{free: map[int64][]C.CUdeviceptr{}, reserved: map[C.CUdeviceptr]*graphBlocks{}}
}

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
	if a.capture != nil {
		// cuMemAlloc may synchronize, which a capture forbids: the call
		// must find its blocks in the cache (Capture then grows it by this
		// one and tries again).
		if a.missed == 0 {
			a.missed = size
		}
		a.mu.Unlock()
		return 0, 0, fmt.Errorf("%s that the cache does not hold, inside a graph capture (the captured call allocates more than its eager run did): %w",
			byteString(size), errCaptureAlloc)
	}
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
	if a.capture != nil {
		a.capture[p] = size
	}
	return p, true
}

// release puts a block back in the cache, or leaves it with its graph.
func (a *allocator) release(p C.CUdeviceptr, size int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.reserved[p]; ok {
		delete(a.reserved, p) // the graph keeps it, still counted in use
		return
	}
	a.free[size] = append(a.free[size], p)
	a.inUse -= size
	a.cached += size
}

// beginCapture starts recording the blocks taken.
func (a *allocator) beginCapture() {
	a.mu.Lock()
	a.capture = map[C.CUdeviceptr]int64{}
	a.missed = 0
	a.mu.Unlock()
}

// grow adds a block of size (a rounded size) to the cache, from the driver.
func (a *allocator) grow(size int64) error {
	var p C.CUdeviceptr
	if r := C.rf_mem_alloc(&p, C.size_t(size)); r != 0 {
		return driverError("allocate "+byteString(size), r)
	}
	a.mu.Lock()
	a.free[size] = append(a.free[size], p)
	a.cached += size
	a.driverAllocs++
	a.mu.Unlock()
	return nil
}

// endCapture gives the blocks taken since beginCapture to a graph (and says
// the size of the first block the capture lacked, 0 if none): those
// freed meanwhile leave the cache (the captured call's order of work on one
// stream made their reuse inside it safe, but a replay writes them again),
// those still held are reserved for when their buffer is freed.
func (a *allocator) endCapture() (*graphBlocks, int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	gb := &graphBlocks{size: a.capture}
	a.capture = nil
	missed := a.missed
	a.missed = 0
	for p, size := range gb.size {
		list := a.free[size]
		if i := slices.Index(list, p); i >= 0 {
			a.free[size] = slices.Delete(list, i, i+1)
			a.cached -= size
			a.inUse += size
		} else {
			a.reserved[p] = gb
		}
	}
	return gb, missed
}

// releaseGraph returns a destroyed graph's blocks: to the cache those no
// buffer holds, to their buffers (freed as any other) the others.
func (a *allocator) releaseGraph(gb *graphBlocks) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, size := range gb.size {
		if a.reserved[p] == gb {
			delete(a.reserved, p)
			continue
		}
		a.free[size] = append(a.free[size], p)
		a.inUse -= size
		a.cached += size
	}
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

// hold counts size bytes that the backend took from the driver itself and
// keeps for the life of the process (cuBLAS's graph workspace) as in use,
// so that MemoryStats and its peak see all the device memory it holds.
func (a *allocator) hold(size int64) {
	a.mu.Lock()
	a.inUse += size
	a.peak = max(a.peak, a.inUse)
	a.mu.Unlock()
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
