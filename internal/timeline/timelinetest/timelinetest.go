// Package timelinetest reads a trace-event file back for tests and checks
// what a viewer relies on: it is JSON, and each track's complete events nest.
package timelinetest

import (
	"encoding/json"
	"os"
	"sort"
	"testing"
	"time"
)

// Event is one complete ("X") event as read back; Depth is 0 at the top of its track.
type Event struct {
	Name  string         `json:"name"`
	Ph    string         `json:"ph"`
	TS    float64        `json:"ts"`
	Dur   float64        `json:"dur"`
	TID   int            `json:"tid"`
	Args  map[string]any `json:"args"`
	Depth int            `json:"-"`
}

// slack absorbs the rounding of microsecond floats at a shared edge.
const slack = 0.01

// Read parses path and fails t unless, on every track, each complete event
// lies inside the one before it that is still open (children inside parents)
// or after it. It returns the complete events, each with its depth.
func Read(t *testing.T, path string) []Event {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		TraceEvents []Event `json:"traceEvents"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	var out []Event
	for _, e := range f.TraceEvents {
		if e.Ph == "X" {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].TS != out[j].TS {
			return out[i].TS < out[j].TS
		}
		return out[i].Dur > out[j].Dur
	})
	open := map[int][]Event{} // per track, the enclosing events
	for i := range out {
		e := &out[i]
		if e.Dur < 0 {
			t.Errorf("%s at %.1fµs: negative duration %.1f", e.Name, e.TS, e.Dur)
		}
		stack := open[e.TID]
		for len(stack) > 0 && stack[len(stack)-1].TS+stack[len(stack)-1].Dur <= e.TS+slack {
			stack = stack[:len(stack)-1]
		}
		if n := len(stack); n > 0 {
			if p := stack[n-1]; e.TS+e.Dur > p.TS+p.Dur+slack {
				t.Errorf("track %d: %s [%.1f, %.1f]µs overlaps %s [%.1f, %.1f]µs without nesting in it",
					e.TID, e.Name, e.TS, e.TS+e.Dur, p.Name, p.TS, p.TS+p.Dur)
			}
		}
		e.Depth = len(stack)
		open[e.TID] = append(stack, *e)
	}
	return out
}

// TopLevel sums the durations of the events at the top of track tid.
func TopLevel(events []Event, tid int) time.Duration {
	var us float64
	for _, e := range events {
		if e.TID == tid && e.Depth == 0 {
			us += e.Dur
		}
	}
	return time.Duration(us * 1e3)
}

// Names counts the events by name.
func Names(events []Event) map[string]int {
	n := map[string]int{}
	for _, e := range events {
		n[e.Name]++
	}
	return n
}
