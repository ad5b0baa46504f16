package timeline_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/internal/timeline/timelinetest"
)

func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *timeline.Recorder
	s := r.Begin("step", "step", 1)
	s.Set("loss", 0.5)
	s.End()
	r.Add(timeline.DeviceTrack, "kernel", "gemm", time.Now(), time.Millisecond)
	if s != nil || r.Totals(s) != nil {
		t.Fatalf("a nil recorder gave span %v, totals %v", s, r.Totals(s))
	}
	if err := r.Write(filepath.Join(t.TempDir(), "trace.json")); err != nil {
		t.Fatal(err)
	}
}

func TestSpansNestAndTotal(t *testing.T) {
	r := timeline.New()
	run := r.Begin("run", "objects", 2)
	for obj := 0; obj < 2; obj++ {
		o := r.Begin("object", "index", obj)
		for step := 0; step < 3; step++ {
			st := r.Begin("step", "step", step)
			it := r.Begin("iteration")
			time.Sleep(200 * time.Microsecond)
			it.Set("loss", math.NaN()) // JSON has no NaN: it becomes a string
			it.End()
			st.End()
		}
		o.End()
	}
	run.End()
	run.End() // a second End keeps the first one's time
	after := r.Begin("write")
	after.End()
	r.Begin("never ended") // a failed run's open span is left out of the file
	path := filepath.Join(t.TempDir(), "trace.json")
	if err := r.Write(path); err != nil {
		t.Fatal(err)
	}
	events := timelinetest.Read(t, path)
	names := timelinetest.Names(events)
	if names["object"] != 2 || names["step"] != 6 || names["iteration"] != 6 || names["never ended"] != 0 {
		t.Fatalf("events by name: %v", names)
	}
	for _, e := range events {
		want := map[string]int{"run": 0, "object": 1, "step": 2, "iteration": 3, "write": 0}[e.Name]
		if e.Depth != want {
			t.Errorf("%s at depth %d, want %d", e.Name, e.Depth, want)
		}
		if e.Name == "iteration" && e.Args["loss"] != "NaN" {
			t.Errorf("iteration args %v", e.Args)
		}
	}
	totals := r.Totals(run)
	if totals["step"] < totals["iteration"] || totals["iteration"] < 6*200e-6 || totals["run"] < totals["object"] || totals["write"] != 0 {
		t.Errorf("totals %v", totals)
	}
}

func TestWriteIsChromeTraceJSON(t *testing.T) {
	r := timeline.New()
	s := r.Begin("generate", "prompt", "a cat")
	start := time.Now()
	r.Add(timeline.DeviceTrack, "kernel", "groupnorm_fwd_f32", start, 3*time.Microsecond, "launches", 1)
	s.End()
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	var f struct {
		TraceEvents []map[string]any `json:"traceEvents"`
	}
	if err := json.Unmarshal(b.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range f.TraceEvents {
		for _, k := range []string{"name", "ph", "ts", "pid", "tid"} {
			if _, ok := e[k]; !ok {
				t.Errorf("event %v has no %q", e, k)
			}
		}
		seen[e["ph"].(string)+" "+e["name"].(string)] = true
	}
	for _, want := range []string{"X generate", "X groupnorm_fwd_f32", "M thread_name", "M process_name"} {
		if !seen[want] {
			t.Errorf("no %q event in %s", want, b.String())
		}
	}
	// An existing file is replaced whole.
	path := filepath.Join(t.TempDir(), "trace.json")
	os.WriteFile(path, []byte("old"), 0o644)
	if err := r.Write(path); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, b.Bytes()) {
		t.Errorf("file %q, want %q", got, b.String())
	}
}

// Spans names each closed span's parent, so spans of one name can be summed
// inside another; open spans and device events are left out.
func TestSpansListParents(t *testing.T) {
	r := timeline.New()
	run := r.Begin("run")
	for obj := 0; obj < 2; obj++ {
		o := r.Begin("object", "index", obj)
		it := r.Begin("iteration")
		it.End()
		o.End()
	}
	r.Add(timeline.DeviceTrack, "kernel", "gemm", time.Now(), time.Millisecond)
	open := r.Begin("failed")
	r.Begin("iteration").End() // inside a span that never ends
	run.End()
	_ = open
	spans := r.Spans()
	var got []string
	for _, s := range spans {
		parent := "-"
		if s.Parent >= 0 {
			parent = spans[s.Parent].Name
		}
		got = append(got, s.Name+"<"+parent)
		if s.Seconds < 0 {
			t.Errorf("%s: %v s", s.Name, s.Seconds)
		}
	}
	want := []string{"run<-", "object<run", "iteration<object", "object<run", "iteration<object", "iteration<-"}
	if !slices.Equal(got, want) {
		t.Errorf("spans %v, want %v", got, want)
	}
	if spans[1].Args["index"] != 0 {
		t.Errorf("args %v", spans[1].Args)
	}
}
