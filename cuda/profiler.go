//go:build cuda

package cuda

// #include "driver.h"
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// profiler times every launch while Profile runs: an event recorded on the
// stream before and after each kernel launch and cuBLAS call, read back once
// the call has finished. A launch's time is then the device's time from
// reaching it in the stream to finishing it, not the host's.
type profiler struct {
	mu    sync.Mutex
	marks []mark
	err   error
	// origin is recorded before the call's first launch: each launch's
	// start is measured from it (Launch.StartMS).
	origin unsafe.Pointer
}

type mark struct {
	key        string
	flops      float64
	start, end unsafe.Pointer
}

// Profile runs f with every launch timed and reports where the device time
// of the call went (kernels by name; GEMMs by library, dtype and the op that
// asked for them). Profiling adds two event records per launch, so the call
// runs a little slower than unprofiled: time calls with Elapsed, and use
// Profile for the shares.
func (g *Backend) Profile(f func() error) (KernelProfile, error) {
	total, spans, err := g.profile(f)
	if err != nil {
		return KernelProfile{}, err
	}
	return aggregate(total, spans), nil
}

// ProfileLaunches runs f as Profile does and returns every launch in the
// order the stream ran them, each with its start on the device measured from
// the moment ProfileLaunches was called: a timeline of the call's kernels
// (--profile-kernels).
func (g *Backend) ProfileLaunches(f func() error) ([]Launch, error) {
	_, spans, err := g.profile(f)
	if err != nil {
		return nil, err
	}
	out := make([]Launch, len(spans))
	for i, s := range spans {
		out[i] = Launch{Name: s.key, StartMS: s.startMS, MS: s.ms, GFLOP: s.flops / 1e9}
	}
	return out, nil
}

// profile runs f with every launch timed: the call's total and its launches.
func (g *Backend) profile(f func() error) (float64, []span, error) {
	p := &profiler{}
	if !g.prof.CompareAndSwap(nil, p) {
		return 0, nil, errors.New("cuda: Profile: a profile is already running")
	}
	// Deferred, so that f panicking (bench recovers an item's panic) leaves
	// no profile running and no events behind: the next item profiles anew.
	defer p.destroy()
	defer g.prof.Store(nil)
	p.origin = p.event("at the start")
	total, err := g.Elapsed(f) // synchronizes: every event has been reached
	if err != nil {
		return 0, nil, err
	}
	spans, err := p.spans()
	return total, spans, err
}

// begin records the event before a launch; nil when not profiling (p nil)
// or when the event failed (kept for Profile to report).
func (p *profiler) begin() unsafe.Pointer {
	if p == nil {
		return nil
	}
	return p.event("before a launch")
}

// end records the event after the launch that begin preceded: kernel, run
// for op (when the kernel serves several), doing flops in its products.
func (p *profiler) end(start unsafe.Pointer, kernel, op string, flops float64) {
	if p == nil || start == nil {
		return
	}
	key := kernel
	if op != "" {
		key += " (" + op + ")"
	}
	stop := p.event("after " + key)
	p.mu.Lock()
	p.marks = append(p.marks, mark{key: key, flops: flops, start: start, end: stop})
	p.mu.Unlock()
}

func (p *profiler) event(what string) unsafe.Pointer {
	var ev unsafe.Pointer
	r := C.rf_event_create(&ev)
	if r == 0 {
		if r = C.rf_event_record(ev); r != 0 {
			C.rf_event_destroy(ev)
		}
	}
	if r != 0 {
		p.mu.Lock()
		if p.err == nil {
			p.err = fmt.Errorf("cuda: profile: event %s: %w", what, driverError("event", r))
		}
		p.mu.Unlock()
		return nil
	}
	return ev
}

// spans reads every launch's time (the stream has been synchronized).
func (p *profiler) spans() ([]span, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	out := make([]span, 0, len(p.marks))
	for _, m := range p.marks {
		if m.end == nil {
			continue // its end event failed: p.err says so
		}
		var ms, from C.float
		if r := C.rf_event_elapsed(&ms, m.start, m.end); r != 0 {
			return nil, fmt.Errorf("cuda: profile: time of %s: %w", m.key, driverError("event time", r))
		}
		if r := C.rf_event_elapsed(&from, p.origin, m.start); r != 0 {
			return nil, fmt.Errorf("cuda: profile: start of %s: %w", m.key, driverError("event time", r))
		}
		out = append(out, span{key: m.key, ms: float64(ms), startMS: float64(from), flops: m.flops})
	}
	return out, nil
}

func (p *profiler) destroy() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.marks {
		C.rf_event_destroy(m.start)
		if m.end != nil {
			C.rf_event_destroy(m.end)
		}
	}
	p.marks = nil
	if p.origin != nil {
		C.rf_event_destroy(p.origin)
	}
}
