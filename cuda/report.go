package cuda

import (
	"cmp"
	"fmt"
	"io"
	"slices"
)

// The reports the backend hands out (AllocStats from Backend.AllocStats, a
// KernelProfile from Backend.Profile) and how a profile's launches are summed
// and printed. This file builds without the cuda tag, since bench-engine's
// report holds these types in every build; the event timing that fills a
// profile needs the driver and is profiler.go's.

// AllocStats counts, since the backend started, the blocks the caching
// allocator had to take from the driver (cuMemAlloc: a miss of its cache)
// and the garbage collections it forced to get unreachable buffers back.
// In a steady loop both should stay flat.
type AllocStats struct {
	DriverAllocs int64 `json:"driver_allocs"`
	Collects     int64 `json:"collects"`
}

// KernelTime is the device time one kernel (or one kind of cuBLAS call) took
// over a profiled call, summed over its launches.
type KernelTime struct {
	Name     string  `json:"name"`
	Launches int     `json:"launches"`
	MS       float64 `json:"ms"`
	GFLOP    float64 `json:"gflop,omitempty"` // products only (GEMMs, attention)
}

// KernelProfile is where a call's device time went: its kernels, largest
// first, and the whole call's time. What the kernels do not cover (Gaps) is
// the device waiting for the host to launch, copies, memsets and allocations.
type KernelProfile struct {
	TotalMS float64      `json:"total_ms"`
	Kernels []KernelTime `json:"kernels"`
}

// Launch is one timed launch of a profiled call (Backend.ProfileLaunches).
type Launch struct {
	Name    string  // as in KernelTime
	StartMS float64 // on the device, from the start of the call
	MS      float64
	GFLOP   float64 // products only
}

// span is one timed launch, in milliseconds.
type span struct {
	key     string
	ms      float64
	startMS float64 // from the profile's origin event
	flops   float64
}

// aggregate sums spans by key, largest total first (ties by name, so the
// order is stable).
func aggregate(total float64, spans []span) KernelProfile {
	byKey := map[string]*KernelTime{}
	var rows []*KernelTime
	for _, s := range spans {
		k := byKey[s.key]
		if k == nil {
			k = &KernelTime{Name: s.key}
			byKey[s.key] = k
			rows = append(rows, k)
		}
		k.Launches++
		k.MS += s.ms
		k.GFLOP += s.flops / 1e9
	}
	p := KernelProfile{TotalMS: total, Kernels: make([]KernelTime, len(rows))}
	for i, k := range rows {
		p.Kernels[i] = *k
	}
	slices.SortFunc(p.Kernels, func(a, b KernelTime) int {
		return cmp.Or(cmp.Compare(b.MS, a.MS), cmp.Compare(a.Name, b.Name))
	})
	return p
}

// KernelMS is the time inside kernels.
func (p KernelProfile) KernelMS() float64 {
	var ms float64
	for _, k := range p.Kernels {
		ms += k.MS
	}
	return ms
}

// Launches counts every launch.
func (p KernelProfile) Launches() int {
	var n int
	for _, k := range p.Kernels {
		n += k.Launches
	}
	return n
}

// Gaps is the call's time outside kernels (never negative: event
// resolution can put the kernels' sum a little above the total).
func (p KernelProfile) Gaps() float64 { return max(p.TotalMS-p.KernelMS(), 0) }

// Write prints the top kernels as a table (top ≤ 0: all of them), the rest
// in one line, then the gaps.
func (p KernelProfile) Write(w io.Writer, top int) {
	share := func(ms float64) float64 {
		if p.TotalMS <= 0 {
			return 0
		}
		return 100 * ms / p.TotalMS
	}
	fmt.Fprintf(w, "  %-44s %8s %10s %6s %9s %8s\n", "kernel", "launches", "ms", "%", "µs/launch", "TFLOP/s")
	shown := p.Kernels
	if top > 0 && len(shown) > top {
		shown = shown[:top]
	}
	for _, k := range shown {
		rate := "-"
		if k.GFLOP > 0 && k.MS > 0 {
			rate = fmt.Sprintf("%.2f", k.GFLOP/k.MS) // GFLOP per ms is TFLOP/s
		}
		fmt.Fprintf(w, "  %-44s %8d %10.3f %6.1f %9.1f %8s\n", k.Name, k.Launches, k.MS, share(k.MS), 1e3*k.MS/float64(k.Launches), rate)
	}
	if rest := p.Kernels[len(shown):]; len(rest) > 0 {
		rp := KernelProfile{Kernels: rest}
		fmt.Fprintf(w, "  %-44s %8d %10.3f %6.1f\n", fmt.Sprintf("(%d other kernels)", len(rest)), rp.Launches(), rp.KernelMS(), share(rp.KernelMS()))
	}
	fmt.Fprintf(w, "  %-44s %8s %10.3f %6.1f\n", "(outside kernels: gaps, copies, memsets)", "", p.Gaps(), share(p.Gaps()))
	fmt.Fprintf(w, "  %-44s %8d %10.3f\n", "(whole call)", p.Launches(), p.TotalMS)
}
