package tensor

import (
	"errors"
	"fmt"
)

// Capturer is implemented by backends that can record a call's device work
// once and replay it (cuda: CUDA graphs), sparing the host the launch of
// every kernel each time. The CPU backend is none: callers run eagerly.
type Capturer interface {
	// Capture runs f with its device work recorded instead of run, and
	// returns the record. f may do device work only: no copy to or from the
	// host, no wait for the device, no allocation the backend's cache cannot
	// serve (run f once eagerly first to fill it; a backend may also grow
	// its cache and capture again, so f may run more than once, each run
	// replacing the last). Every buffer f allocates
	// belongs to the graph until Close, since each replay writes it again.
	// After an error nothing was recorded and nothing is pending: run eagerly.
	Capture(f func()) (Graph, error)
	// CopyBuffer copies src into dst (same dtype and length) in the
	// backend's order of work: a refill of a graph's input before a replay.
	CopyBuffer(dst, src Buffer)
}

// Graph is a recorded call.
type Graph interface {
	// Replay queues the recorded work again; its errors show at Sync, as
	// those of ops do.
	Replay()
	// Close releases the record and the buffers it writes.
	Close()
}

// Call is a captured call of f: fixed input buffers that Run refills, the
// recorded work, and its fixed output.
type Call struct {
	b   Backend
	c   Capturer
	g   Graph
	in  []*Tensor
	out *Tensor
}

// CaptureCall captures f(inputs) for replays by Run with new inputs of the
// same shapes and dtypes, and returns f(inputs) too, from an eager run
// (scoped) on copies of inputs that also fills the backend's cache with the
// blocks the captured run takes. f must launch the same work whatever the
// values of its inputs, and keep nothing of them (what Scoped asks). The
// error wraps ErrUnsupported when b cannot capture; after any error the
// caller runs f eagerly.
func CaptureCall(b Backend, f func(in []*Tensor) *Tensor, inputs ...*Tensor) (*Call, *Tensor, error) {
	c, ok := capturer(b)
	if !ok {
		return nil, nil, fmt.Errorf("tensor: %s cannot capture calls: %w", b.Name(), ErrUnsupported)
	}
	for i, x := range inputs {
		if x.Tracked() {
			return nil, nil, fmt.Errorf("tensor: capture: input %d is tracked (a tape needs every intermediate): %w", i, ErrUnsupported)
		}
		if x.Backend() != b {
			return nil, nil, fmt.Errorf("tensor: capture: input %d is on %s, not %s", i, x.Backend().Name(), b.Name())
		}
	}
	call := &Call{b: b, c: c}
	for _, x := range inputs {
		fixed := Wrap(b, b.Alloc(x.DType(), x.Numel()), x.shape)
		c.CopyBuffer(fixed.buf, x.buf)
		call.in = append(call.in, fixed)
	}
	first := Scoped(b, func() *Tensor { return f(call.in) })
	g, err := c.Capture(func() {
		if call.out != nil { // an earlier try's
			call.out.Free()
		}
		call.out = Scoped(b, func() *Tensor { return f(call.in) })
	})
	if err != nil {
		first.Free()
		call.free()
		return nil, nil, err
	}
	call.g = g
	return call, first, nil
}

// capturer is b as a Capturer, when it captures (a FLOPCounter captures
// when what it counts does).
func capturer(b Backend) (Capturer, bool) {
	c, ok := b.(Capturer)
	if fc, counted := b.(*FLOPCounter); counted {
		_, ok = fc.Backend.(Capturer)
	}
	return c, ok
}

// Captures says whether b can capture calls at all (a Capturer, or a
// FLOPCounter around one); a capture may still be refused (graphs off, a
// profile running), which CaptureCall says.
func Captures(b Backend) bool {
	_, ok := capturer(b)
	return ok
}

// Refill copies src into dst's buffer (same dtype and length) in the
// backend's order of work, on a backend that captures: a graph that reads
// dst then reads src's values at its next replay. It reports whether it
// copied; elsewhere it copies nothing (no graph holds dst: replace it).
func Refill(dst, src *Tensor) bool {
	c, ok := capturer(dst.b)
	if !ok {
		return false
	}
	if dst.DType() != src.DType() || dst.Numel() != src.Numel() || src.b != dst.b {
		panic(fmt.Sprintf("tensor: refill of %v with %v", dst, src))
	}
	c.CopyBuffer(dst.buf, src.buf)
	return true
}

// copyOut copies x into a new tensor.
func (c *Call) copyOut(x *Tensor) *Tensor {
	out := Wrap(c.b, c.b.Alloc(x.DType(), x.Numel()), x.shape)
	c.c.CopyBuffer(out.buf, x.buf)
	return out
}

// Run refills the inputs, replays the call and returns a copy of its output
// (the fixed output is written again by the next Run, and callers such as
// multistep schedulers keep predictions). The inputs must have the shapes and
// dtypes of the captured ones.
func (c *Call) Run(inputs ...*Tensor) (*Tensor, error) {
	if c.g == nil {
		return nil, errors.New("tensor: run of a closed call")
	}
	if len(inputs) != len(c.in) {
		return nil, fmt.Errorf("tensor: captured call of %d inputs run with %d", len(c.in), len(inputs))
	}
	for i, x := range inputs {
		if want := c.in[i]; !x.shape.Equal(want.shape) || x.DType() != want.DType() || x.Backend() != c.b {
			return nil, fmt.Errorf("tensor: captured call: input %d is %v, captured as %v", i, x, want)
		}
	}
	for i, x := range inputs {
		c.c.CopyBuffer(c.in[i].buf, x.buf)
	}
	c.g.Replay()
	return c.copyOut(c.out), nil
}

// Close releases the graph and the fixed buffers. A nil Call may be closed.
func (c *Call) Close() {
	if c == nil {
		return
	}
	if c.g != nil {
		c.g.Close()
		c.g = nil
	}
	c.free()
}

func (c *Call) free() {
	for _, x := range c.in {
		x.Free()
	}
	c.in = nil
	if c.out != nil {
		c.out.Free()
		c.out = nil
	}
}

// Passes runs f, a function of device tensors that launches the same work
// whatever its inputs' values, as a loop runs it pass after pass: the first
// pass eagerly (in a scope), where an error of f is an error; the second
// captured (CaptureCall), where f must not fail; every later one replayed.
// On a backend that cannot capture, with graphs off, or where the capture
// is refused (an error wrapping ErrUnsupported: the backend says why),
// every pass runs eagerly: the same ops; any other error of the capture is
// the pass's. Setting Eager before a pass makes it and every later one eager.
type Passes struct {
	b     Backend
	what  string // names f in the panic of a capture that fails
	f     func(in []*Tensor) (*Tensor, error)
	calls int
	call  *Call
	Eager bool
}

// NewPasses makes the passes of f on b; what names f ("rfnet: guidance pass").
func NewPasses(b Backend, what string, f func(in []*Tensor) (*Tensor, error)) *Passes {
	return &Passes{b: b, what: what, f: f}
}

// Run is one pass on in (each pass's the same shapes and dtypes); its
// output is the caller's.
func (p *Passes) Run(in ...*Tensor) (*Tensor, error) {
	switch {
	case p.Eager || p.calls == 0:
		var err error
		out := Scoped(p.b, func() *Tensor {
			var o *Tensor
			o, err = p.f(in)
			return o
		})
		if err != nil {
			return nil, err
		}
		p.calls++
		return out, nil
	case p.call == nil:
		call, first, err := CaptureCall(p.b, func(in []*Tensor) *Tensor {
			out, err := p.f(in)
			if err != nil { // the first pass ran the same function without one
				panic(fmt.Sprintf("%s to capture: %v", p.what, err))
			}
			return out
		}, in...)
		if errors.Is(err, ErrUnsupported) {
			p.Eager = true
			return p.Run(in...)
		}
		if err != nil {
			return nil, err
		}
		p.call = call
		p.calls++
		return first, nil
	default:
		out, err := p.call.Run(in...)
		if err != nil {
			return nil, err
		}
		p.calls++
		return out, nil
	}
}

// Calls is the number of passes run so far (during the first, 0).
func (p *Passes) Calls() int { return p.calls }

// Captured says whether the passes from the third on replay a captured one.
func (p *Passes) Captured() bool { return p != nil && p.call != nil }

// Close releases the captured pass. A nil Passes may be closed.
func (p *Passes) Close() {
	if p != nil {
		p.call.Close()
	}
}
