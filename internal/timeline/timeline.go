package timeline

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
)

// The tracks of the file. Host spans all run on the goroutine that drives the
// run; device kernels (Add) come back from the GPU's profiler afterwards and
// get a track of their own, since the device runs behind the host.
const (
	HostTrack   = 1
	DeviceTrack = 2
)

var trackNames = map[int]string{HostTrack: "host", DeviceTrack: "device kernels"}

// Recorder collects the spans of one process. It is safe for concurrent use;
// spans that must nest have to come from one goroutine.
type Recorder struct {
	mu     sync.Mutex
	origin time.Time
	events []event
	stack  []int // the host spans still open, innermost last
}

// event is one trace event; TS and Dur are microseconds from the recorder's origin.
type event struct {
	Name   string         `json:"name"`
	Cat    string         `json:"cat,omitempty"`
	Ph     string         `json:"ph"`
	TS     float64        `json:"ts"`
	Dur    float64        `json:"dur"`
	PID    int            `json:"pid"`
	TID    int            `json:"tid"`
	Args   map[string]any `json:"args,omitempty"`
	parent int            // index of the enclosing span, -1 at the top
	open   bool
}

// New starts a recorder; its origin, time zero of the file, is now.
func New() *Recorder { return &Recorder{origin: time.Now()} }

// Span is an open span; End closes it.
type Span struct {
	r *Recorder
	i int
}

// Begin opens a span on the host track inside the innermost span still open
// there. args are key, value pairs (a key is a string): what the span
// worked on, shown by the viewer when the span is selected.
func (r *Recorder) Begin(name string, args ...any) *Span {
	if r == nil {
		return nil
	}
	now := r.since(time.Now())
	r.mu.Lock()
	defer r.mu.Unlock()
	parent := -1
	if n := len(r.stack); n > 0 {
		parent = r.stack[n-1]
	}
	r.events = append(r.events, event{Name: name, Ph: "X", TS: now, PID: 1, TID: HostTrack, Args: argMap(nil, args), parent: parent, open: true})
	i := len(r.events) - 1
	r.stack = append(r.stack, i)
	return &Span{r: r, i: i}
}

// Set adds arguments known only once the span's work is done (a loss).
func (s *Span) Set(args ...any) {
	if s == nil {
		return
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	e := &s.r.events[s.i]
	e.Args = argMap(e.Args, args)
}

// End closes the span. A second End does nothing.
func (s *Span) End() {
	if s == nil {
		return
	}
	now := s.r.since(time.Now())
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	e := &s.r.events[s.i]
	if !e.open {
		return
	}
	e.Dur, e.open = now-e.TS, false
	// Usually the innermost; a span ended out of order leaves from where it is.
	for k := len(s.r.stack) - 1; k >= 0; k-- {
		if s.r.stack[k] == s.i {
			s.r.stack = append(s.r.stack[:k], s.r.stack[k+1:]...)
			break
		}
	}
}

// Add records a finished event on track tid that was timed elsewhere (a GPU
// kernel): start is host time, dur its length.
func (r *Recorder) Add(tid int, cat, name string, start time.Time, dur time.Duration, args ...any) {
	if r == nil {
		return
	}
	ts := r.since(start)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{Name: name, Cat: cat, Ph: "X", TS: ts, Dur: float64(dur.Nanoseconds()) / 1e3,
		PID: 1, TID: tid, Args: argMap(nil, args), parent: -1})
}

func (r *Recorder) since(t time.Time) float64 { return float64(t.Sub(r.origin).Nanoseconds()) / 1e3 }

// argMap adds key, value pairs to m. Non-finite numbers become strings, which
// JSON can hold ("NaN"): a diverged loss is worth seeing in the trace.
func argMap(m map[string]any, kv []any) map[string]any {
	if len(kv) == 0 {
		return m
	}
	if m == nil {
		m = make(map[string]any, len(kv)/2)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			v = fmt.Sprint(f)
		}
		m[fmt.Sprint(kv[i])] = v
	}
	return m
}

// Totals sums the seconds of the closed spans inside s (s included) by name:
// a run's per-stage totals. Spans of the same name nested in each other
// would be counted twice; the pipeline's names do not nest in themselves.
func (r *Recorder) Totals(s *Span) map[string]float64 {
	if r == nil || s == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]float64{}
	inside := map[int]bool{s.i: true}
	for i := s.i; i < len(r.events); i++ {
		e := &r.events[i]
		if i != s.i && !inside[e.parent] {
			continue
		}
		inside[i] = true
		if !e.open {
			out[e.Name] += e.Dur / 1e6
		}
	}
	return out
}

// SpanRecord is a closed host span as Spans lists it.
type SpanRecord struct {
	Name    string
	Seconds float64
	// Parent is the index in the list of the enclosing span, -1 at the top
	// (or when the enclosing span is still open).
	Parent int
	Args   map[string]any
}

// Spans lists the closed host spans in the order they began, each with its
// enclosing span: what a caller needs to sum a span's kind inside another
// (the steering iterations of the single-object runs apart from the
// overall run's), which Totals, summing by name alone, cannot.
func (r *Recorder) Spans() []SpanRecord {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	at := map[int]int{} // event index -> list index
	var out []SpanRecord
	for i, e := range r.events {
		if e.open || e.TID != HostTrack {
			continue
		}
		parent := -1
		if k, ok := at[e.parent]; ok {
			parent = k
		}
		at[i] = len(out)
		out = append(out, SpanRecord{Name: e.Name, Seconds: e.Dur / 1e6, Parent: parent, Args: e.Args})
	}
	return out
}

// file is the JSON object of the trace-event format.
type file struct {
	TraceEvents     []event `json:"traceEvents"`
	DisplayTimeUnit string  `json:"displayTimeUnit"`
}

// WriteTo writes the trace as JSON: the closed spans in time order (spans
// still open are left out: a failed run's trace ends where it failed) and the
// names of the tracks.
func (r *Recorder) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	f := file{DisplayTimeUnit: "ms"}
	for _, e := range r.events {
		if !e.open {
			f.TraceEvents = append(f.TraceEvents, e)
		}
	}
	r.mu.Unlock()
	// Parents start no later than their children; at the same start the
	// longer one (the parent) comes first, as viewers expect.
	sort.SliceStable(f.TraceEvents, func(i, j int) bool {
		a, b := f.TraceEvents[i], f.TraceEvents[j]
		if a.TS != b.TS {
			return a.TS < b.TS
		}
		return a.Dur > b.Dur
	})
	tids := []int{HostTrack, DeviceTrack}
	for _, tid := range tids {
		f.TraceEvents = append(f.TraceEvents, event{Name: "thread_name", Ph: "M", PID: 1, TID: tid, Args: map[string]any{"name": trackNames[tid]}})
	}
	f.TraceEvents = append(f.TraceEvents, event{Name: "process_name", Ph: "M", PID: 1, Args: map[string]any{"name": "rfnet-native"}})
	data, err := json.Marshal(f)
	if err != nil {
		return 0, fmt.Errorf("timeline: %w", err)
	}
	n, err := w.Write(append(data, '\n'))
	return int64(n), err
}

// Write writes the trace to path atomically: a reader never sees half a file.
func (r *Recorder) Write(path string) error {
	if r == nil {
		return nil
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := r.WriteTo(w)
		return err
	})
}
