package tensor

// Scoper is implemented by backends whose memory is worth handing back as
// soon as a call is over (cuda: device memory, which the garbage collector
// does not see, so that unreachable buffers otherwise wait for a collection
// and the next call allocates from the driver again).
type Scoper interface {
	// BeginScope starts recording the buffers allocated from now on. The
	// returned end frees every recorded buffer not in keep and passes the
	// kept ones to the enclosing scope, if any. Scopes nest; each end is
	// called once, innermost first.
	BeginScope() (end func(keep ...Buffer))
}

// Scoped runs f and, when b is a Scoper, frees every buffer f allocated on b
// except the one of the tensor f returns (views of it share that buffer).
// The caller promises that nothing else f creates outlives it: no tracked
// inputs (the tape would keep intermediates for Backward), no hooks that keep
// what they are shown, no caches filled on first use. A panic out of f frees
// everything f allocated.
func Scoped(b Backend, f func() *Tensor) *Tensor {
	s, ok := b.(Scoper)
	if !ok {
		return f()
	}
	end := s.BeginScope()
	var out *Tensor
	defer func() {
		if out != nil {
			end(out.buf)
		} else {
			end()
		}
	}()
	out = f()
	return out
}

// BeginScope forwards to the counted backend, when it has scopes.
func (c *FLOPCounter) BeginScope() func(keep ...Buffer) {
	if s, ok := c.Backend.(Scoper); ok {
		return s.BeginScope()
	}
	return func(...Buffer) {}
}
