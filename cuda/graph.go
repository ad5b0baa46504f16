//go:build cuda

package cuda

// #include "driver.h"
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rfnet/rfnet-native/tensor"
)

// CUDA graphs: a call's launches recorded once by stream capture and
// replayed with one cuGraphLaunch, so the host no longer pays ~1000 kernel
// launches per UNet call (issue 20: on an H100 the gaps between them were
// 17% of an SD UNet call). The captured call reads and writes fixed buffers: its inputs, which
// the caller refills before each replay (CopyBuffer, outside the capture),
// every intermediate and its output, all of which the graph keeps from the
// allocator's cache until Close (alloc.go: graphBlocks).

var _ tensor.Capturer = (*Backend)(nil)

// workspaceBytes is cuBLAS's workspace while graphs are in use: what the
// cuBLAS documentation recommends for Hopper (32 MiB; 4 MiB before it).
// Bound with cublasSetWorkspace, it keeps cuBLAS from allocating inside a
// capture.
const workspaceBytes = 32 << 20

// graphs is the backend's graph state.
type graphs struct {
	mu        sync.Mutex
	off       bool // Options.NoGraphs, RFNET_CUDA_GRAPHS=0, or SetGraphs(false)
	workspace C.CUdeviceptr
	capturing bool            // a capture runs (they do not nest)
	noticed   map[string]bool // reasons already said on stderr
	replays   atomic.Int64    // graph launches, for tests
}

// graphsOff reads RFNET_CUDA_GRAPHS=0, which turns graphs off like Options.NoGraphs.
func graphsOff(o Options) bool { return o.NoGraphs || os.Getenv("RFNET_CUDA_GRAPHS") == "0" }

// SetGraphs turns capture on or off (tests run the same call both ways in
// one process; the backend is opened once) and returns the previous setting.
func (g *Backend) SetGraphs(on bool) (was bool) {
	g.graph.mu.Lock()
	defer g.graph.mu.Unlock()
	was = !g.graph.off
	g.graph.off = !on
	return was
}

// notice says once per kind of reason on stderr why a call runs without a
// graph: eager is correct, only slower, so it is no error, but not silent
// either.
func (g *Backend) notice(kind, reason string) {
	g.graph.mu.Lock()
	defer g.graph.mu.Unlock()
	if g.graph.noticed == nil {
		g.graph.noticed = map[string]bool{}
	}
	if !g.graph.noticed[kind] {
		g.graph.noticed[kind] = true
		fmt.Fprintf(os.Stderr, "cuda: %s: running without CUDA graphs (eagerly)\n", reason)
	}
}

// unavailableLocked says why no capture can start now ("" when one can),
// and whether to say so (a setting the user chose is not news). g.graph.mu
// is held.
func (g *Backend) unavailableLocked() (why string, say bool) {
	switch off, capturing := g.graph.off, g.graph.capturing; {
	case capturing:
		return "a capture is already running (captures do not nest)", false
	case off:
		return "graphs are turned off (Options.NoGraphs, RFNET_CUDA_GRAPHS=0)", false
	case C.rf_graphs_available() == 0:
		return "the driver lacks the CUDA graph functions (older than CUDA 11)", true
	case g.prof.Load() != nil:
		return "a profile is running (it times every launch, which a graph hides)", true
	}
	return "", false
}

// cublasWorkspace allocates cuBLAS's workspace on first use (outside any
// capture), counted in MemoryStats as in use from then on; 0 with the
// built-in GEMM, which needs none.
func (g *Backend) cublasWorkspace() (C.CUdeviceptr, error) {
	if g.cublas == "" {
		return 0, nil
	}
	g.graph.mu.Lock()
	defer g.graph.mu.Unlock()
	if g.graph.workspace == 0 {
		var p C.CUdeviceptr
		if r := C.rf_mem_alloc(&p, workspaceBytes); r != 0 {
			return 0, driverError("allocate the cuBLAS workspace", r)
		}
		g.graph.workspace = p // kept for the life of the process
		g.mem.hold(workspaceBytes)
	}
	return g.graph.workspace, nil
}

// Capture implements tensor.Capturer: f's device work is recorded on the
// capture stream instead of run, and instantiated. Pending work and errors
// are settled first (Sync), so an error afterwards is the capture's. Like a
// scope, a capture takes every launch on the backend, whichever goroutine
// makes it: the backend serves one computation at a time.
func (g *Backend) Capture(f func()) (tensor.Graph, error) {
	g.graph.mu.Lock()
	why, say := g.unavailableLocked()
	if why == "" {
		g.graph.capturing = true
	}
	g.graph.mu.Unlock()
	if why != "" {
		if say {
			g.notice(why, why)
		}
		return nil, fmt.Errorf("cuda: capture: %s: %w", why, tensor.ErrUnsupported)
	}
	defer func() {
		g.graph.mu.Lock()
		g.graph.capturing = false
		g.graph.mu.Unlock()
	}()
	// A global-mode capture must end on the thread that began it
	// (CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD otherwise), and goroutines
	// move between threads.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := g.Sync(); err != nil {
		return nil, err
	}
	ws, err := g.cublasWorkspace()
	if err != nil {
		return nil, err
	}
	// A capture that lacked a block (the caller holds one its eager run
	// left in the cache, such as that run's result) grows the cache by it
	// and runs f again: a capture costs host time only.
	for attempt := 0; ; attempt++ {
		x, missed, err := g.captureOnce(f, ws)
		if missed > 0 && attempt < maxCaptureGrowth {
			if err := g.mem.grow(missed); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			g.notice("failed", "a capture failed ("+err.Error()+")")
			// Unsupported: the call cannot be captured, and runs eagerly.
			return nil, fmt.Errorf("cuda: capture: %w: %w", err, tensor.ErrUnsupported)
		}
		return x, nil
	}
}

// maxCaptureGrowth bounds the blocks a capture may add to the cache.
const maxCaptureGrowth = 8

// captureOnce captures f once: the graph, or the error and the size of the
// first block the capture lacked (0 if none).
func (g *Backend) captureOnce(f func(), ws C.CUdeviceptr) (*graph, int64, error) {
	g.mem.beginCapture()
	if r := C.rf_capture_begin(ws, workspaceBytes); r != 0 {
		gb, _ := g.mem.endCapture()
		g.mem.releaseGraph(gb)
		return nil, 0, driverError("begin capture", r)
	}
	var exec unsafe.Pointer
	ended := false
	end := func() (C.CUresult, *graphBlocks, int64, error) {
		ended = true
		r := C.rf_capture_end(&exec, ws, workspaceBytes)
		gb, missed := g.mem.endCapture()
		g.mu.Lock()
		err := g.err // what failed inside: skipped launches, a refused call
		g.err = nil
		g.mu.Unlock()
		return r, gb, missed, err
	}
	defer func() {
		if !ended { // f panicked: leave capture mode, free what it took, let the panic go on
			_, gb, _, _ := end()
			if exec != nil {
				C.rf_graph_destroy(exec)
			}
			g.mem.releaseGraph(gb)
		}
	}()
	f()
	r, gb, missed, err := end()
	if r != 0 || err != nil {
		if exec != nil {
			C.rf_graph_destroy(exec)
		}
		g.mem.releaseGraph(gb)
		if r != 0 {
			err = errors.Join(err, driverError("end capture", r))
		}
		return nil, missed, err
	}
	return &graph{g: g, exec: exec, blocks: gb}, 0, nil
}

// CopyBuffer implements tensor.Capturer: a device-to-device copy on the stream.
func (g *Backend) CopyBuffer(dst, src tensor.Buffer) {
	d, s := dev("copy", dst), dev("copy", src)
	if d.dtype != s.dtype || d.n != s.n {
		panic(fmt.Sprintf("cuda: copy: %d elements of %s into %d of %s", s.n, s.dtype, d.n, d.dtype))
	}
	if g.failed() || d.ptr == 0 || s.ptr == 0 || s.bytes() == 0 {
		return
	}
	if r := C.rf_memcpy_dtod(d.ptr, s.ptr, C.size_t(s.bytes())); r != 0 {
		g.fail(driverError("copy on device", r))
	}
}

// graph is an instantiated capture and the blocks its replays write.
type graph struct {
	g      *Backend
	exec   unsafe.Pointer
	blocks *graphBlocks
}

// Replay queues the graph on the stream; errors show at Sync. A profile
// running meanwhile times the whole graph as one launch.
func (x *graph) Replay() {
	g := x.g
	if x.exec == nil {
		panic("cuda: replay of a closed graph")
	}
	if g.failed() {
		return
	}
	prof := g.prof.Load()
	start := prof.begin()
	r := C.rf_graph_launch(x.exec)
	prof.end(start, "cuda graph", "", 0)
	if r != 0 {
		g.fail(driverError("graph launch", r))
	}
	g.graph.replays.Add(1)
}

// Close destroys the graph (the driver lets replays already queued finish)
// and gives its blocks back to the cache: work that takes them next is on
// the same stream, so it runs after those replays.
func (x *graph) Close() {
	if x.exec == nil {
		return
	}
	if r := C.rf_graph_destroy(x.exec); r != 0 {
		x.g.fail(driverError("destroy graph", r))
	}
	x.exec = nil
	x.g.mem.releaseGraph(x.blocks)
}
