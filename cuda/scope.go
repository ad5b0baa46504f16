//go:build cuda

package cuda

import (
	"slices"

	"github.com/rfnet/rfnet-native/tensor"
)

// scopes records the buffers allocated while a tensor.Scoped call runs, so
// that they go back to the allocator's cache when it returns instead of when
// the garbage collector finds them: a UNet call at 512² makes a few hundred
// intermediates, and without this each call took most of them from the
// driver again (cuMemAlloc) and now and then stopped for a forced collection.
//
// A scope records every allocation on the backend, whichever goroutine makes
// it: like its one stream, the backend serves one computation at a time
// (the pipelines run their steps in one goroutine).
type scopes struct {
	depth int
	bufs  []*buffer // allocated under the open scopes, innermost last
}

// BeginScope implements tensor.Scoper.
func (g *Backend) BeginScope() func(keep ...tensor.Buffer) {
	g.scopeMu.Lock()
	mark := len(g.scope.bufs)
	g.scope.depth++
	g.scopeMu.Unlock()
	ended := false
	return func(keep ...tensor.Buffer) {
		if ended {
			return
		}
		ended = true
		g.scopeMu.Lock()
		var free, kept []*buffer
		for _, x := range g.scope.bufs[mark:] {
			if slices.ContainsFunc(keep, func(k tensor.Buffer) bool { return k == tensor.Buffer(x) }) {
				kept = append(kept, x)
			} else {
				free = append(free, x)
			}
		}
		n := len(g.scope.bufs)
		g.scope.bufs = append(g.scope.bufs[:mark], kept...)
		clear(g.scope.bufs[len(g.scope.bufs):n]) // no references left behind in the backing array
		g.scope.depth--
		if g.scope.depth == 0 {
			// The outermost scope kept these for its caller: the collector takes over.
			clear(g.scope.bufs)
			g.scope.bufs = g.scope.bufs[:0]
		}
		g.scopeMu.Unlock()
		for _, x := range free {
			g.Free(x)
		}
	}
}

// recordInScope adds x to the innermost open scope, if any.
func (g *Backend) recordInScope(x *buffer) {
	g.scopeMu.Lock()
	if g.scope.depth > 0 {
		g.scope.bufs = append(g.scope.bufs, x)
	}
	g.scopeMu.Unlock()
}
