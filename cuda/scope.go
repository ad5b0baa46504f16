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
func (b *Backend) BeginScope() func(keep ...tensor.Buffer) {
	b.scopeMu.Lock()
	mark := len(b.scope.bufs)
	b.scope.depth++
	b.scopeMu.Unlock()
	ended := false
	return func(keep ...tensor.Buffer) {
		if ended {
			return
		}
		ended = true
		b.scopeMu.Lock()
		var free, kept []*buffer
		for _, x := range b.scope.bufs[mark:] {
			if slices.ContainsFunc(keep, func(k tensor.Buffer) bool { return k == tensor.Buffer(x) }) {
				kept = append(kept, x)
			} else {
				free = append(free, x)
			}
		}
		n := len(b.scope.bufs)
		b.scope.bufs = append(b.scope.bufs[:mark], kept...)
		clear(b.scope.bufs[len(b.scope.bufs):n]) // no references left behind in the backing array
		b.scope.depth--
		if b.scope.depth == 0 {
			// The outermost scope kept these for its caller: the collector takes over.
			clear(b.scope.bufs)
			b.scope.bufs = b.scope.bufs[:0]
		}
		b.scopeMu.Unlock()
		for _, x := range free {
			b.Free(x)
		}
	}
}

// recordInScope adds x to the innermost open scope, if any.
func (b *Backend) recordInScope(x *buffer) {
	b.scopeMu.Lock()
	if b.scope.depth > 0 {
		b.scope.bufs = append(b.scope.bufs, x)
	}
	b.scopeMu.Unlock()
}
