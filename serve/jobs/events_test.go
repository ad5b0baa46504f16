package jobs

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// steps is a Work that reports two objects of two steps each, a loss and a timing.
func steps(ctx context.Context, dir string, r Reporter) (any, error) {
	for obj := range 2 {
		for step := 1; step <= 2; step++ {
			r.Progress(Progress{Stage: "object", Object: &obj, Objects: 2, Step: step, Steps: 2, Fraction: float64(obj*2+step) / 4})
		}
		r.Event("loss", map[string]any{"object": obj, "loss": 0.5})
	}
	r.Timing("decode", 0.25)
	return nil, os.WriteFile(filepath.Join(dir, "image.png"), []byte("png"), 0o644)
}

// stepsEvents are the types steps emits, between the queue's state events.
var stepsEvents = []string{
	"state", "state", // queued, running
	"stage", "step", "step", "loss",
	"stage", "step", "step", "loss",
	"timing", "state", // succeeded
}

func types(events []Event) []string {
	var out []string
	for _, ev := range events {
		out = append(out, ev.Type)
	}
	return out
}

func TestEventsComeInOrderAndReplay(t *testing.T) {
	var mu sync.Mutex
	var stepSeconds []float64
	q, _ := openQueue(t, Options{Length: 5, Workers: 1, OnStep: func(kind string, s float64) {
		mu.Lock()
		stepSeconds = append(stepSeconds, s)
		mu.Unlock()
	}})
	b := newBlocker()
	first := submit(t, q, b.work)
	recv(t, b.started, "the first job's start")
	j := submit(t, q, steps)

	// Subscribed while queued: the past holds the queued event, the rest comes live.
	past, live, stop, err := q.Events(j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	close(b.release)
	got := append(past, drain(t, live)...)
	wait(t, q, first.ID)
	if !reflect.DeepEqual(types(got), stepsEvents) {
		t.Fatalf("live events %v, want %v", types(got), stepsEvents)
	}
	for i, ev := range got {
		if ev.Seq != i+1 {
			t.Fatalf("event %d has seq %d, want %d", i, ev.Seq, i+1)
		}
	}
	if s := string(got[0].Data); s != `{"state":"queued"}` {
		t.Fatalf("first event %s, want the queued state", s)
	}
	if s := string(got[2].Data); s != `{"stage":"object","object":0,"objects":2}` {
		t.Fatalf("stage event %s", s)
	}
	if s := string(got[len(got)-1].Data); s != `{"state":"succeeded"}` {
		t.Fatalf("last event %s, want the succeeded state", s)
	}

	// A finished job replays the same events from disk, with no live channel.
	replay, live, stop2, err := q.Events(j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	if live != nil {
		t.Fatal("a finished job's events have a live channel")
	}
	if !reflect.DeepEqual(replay, got) {
		t.Fatalf("replay differs from the live events:\n%v\n%v", replay, got)
	}
	after, _, stop3, _ := q.Events(j.ID, 3)
	defer stop3()
	if len(after) != len(got)-3 || after[0].Seq != 4 {
		t.Fatalf("events after 3: %d from seq %d, want %d from 4", len(after), after[0].Seq, len(got)-3)
	}

	// Steps 1→2 of each object are the increasing ones.
	mu.Lock()
	defer mu.Unlock()
	if len(stepSeconds) != 2 {
		t.Fatalf("OnStep called %d times, want 2 (once per increasing step)", len(stepSeconds))
	}
}

func TestFailedJobsLastEventCarriesTheError(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 5, Workers: 1})
	j := submit(t, q, func(ctx context.Context, dir string, r Reporter) (any, error) {
		return nil, os.ErrPermission
	})
	wait(t, q, j.ID)
	events, _, stop, err := q.Events(j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	var last stateData
	json.Unmarshal(events[len(events)-1].Data, &last)
	if last != (stateData{State: Failed, Error: os.ErrPermission.Error()}) {
		t.Fatalf("last event %s, want the failed state and its error", events[len(events)-1].Data)
	}
}

// A subscriber that never reads is dropped once its buffer is full; the job goes on
// and the events file keeps everything.
func TestSlowSubscriberIsDroppedWithoutBlocking(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 5, Workers: 1})
	const n = 4 * subscriberBuffer
	b := newBlocker()
	first := submit(t, q, b.work)
	recv(t, b.started, "the first job's start")
	j := submit(t, q, func(ctx context.Context, dir string, r Reporter) (any, error) {
		for i := range n {
			r.Event("preview", map[string]int{"step": i})
		}
		return nil, nil
	})
	_, slow, stop, err := q.Events(j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	close(b.release)
	wait(t, q, first.ID)
	wantState(t, wait(t, q, j.ID), Succeeded, "")
	got := len(drain(t, slow))
	if got != subscriberBuffer {
		t.Fatalf("the slow subscriber got %d events before being dropped, want its buffer, %d", got, subscriberBuffer)
	}
	all, _, stop2, _ := q.Events(j.ID, 0)
	stop2()
	if len(all) != n+3 {
		t.Fatalf("the events file holds %d events, want %d", len(all), n+3)
	}
}

func TestReadingEventsIgnoresATornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), eventsFile)
	for i := 1; i <= 3; i++ {
		if err := appendEvent(path, Event{Seq: i, Type: "step", Time: time.Now(), Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":4,"type":"st`)
	f.Close()

	events, err := readEvents(path, 0)
	if err != nil || len(events) != 3 {
		t.Fatalf("read %d events (%v), want the 3 whole ones", len(events), err)
	}
	last, err := repairEvents(path)
	if err != nil || last != 3 {
		t.Fatalf("repair: last seq %d (%v), want 3", last, err)
	}
	appendEvent(path, Event{Seq: 4, Type: "state", Data: json.RawMessage(`{}`)})
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), `"st{`) || strings.Count(string(data), "\n") != 4 {
		t.Fatalf("after the repair and one append the file is\n%s", data)
	}
	if events, _ := readEvents(path, 0); len(events) != 4 {
		t.Fatalf("read %d events after the repair, want 4", len(events))
	}
}
