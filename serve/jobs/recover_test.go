package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// storeJob writes a job's folder as a previous queue would have left it.
func storeJob(t *testing.T, dir string, j Job, events []string, files map[string]string) {
	t.Helper()
	jd := filepath.Join(dir, "jobs", j.ID)
	if err := os.MkdirAll(jd, 0o755); err != nil {
		t.Fatal(err)
	}
	if j.Request == nil {
		j.Request = json.RawMessage(`{"prompt":"p"}`)
	}
	if err := writeJob(jd, j); err != nil {
		t.Fatal(err)
	}
	for i, typ := range events {
		appendEvent(filepath.Join(jd, eventsFile), Event{Seq: i + 1, Type: typ, Time: j.Created, Data: json.RawMessage(`{}`)})
	}
	for name, content := range files {
		path := filepath.Join(jd, filesDir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRecoversWhatThePreviousQueueLeft(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { v := t0.Add(time.Duration(s) * time.Second); return &v }
	past := time.Now().Add(-time.Minute)

	storeJob(t, dir, Job{ID: "00000000000000d1", Kind: "sd", State: Succeeded, Created: t0, Started: at(1), Finished: at(2),
		Files: []string{"image.png"}, Result: json.RawMessage(`{"seed":1}`)},
		[]string{"state", "state", "state"}, map[string]string{"image.png": "png"})
	storeJob(t, dir, Job{ID: "00000000000000d2", Kind: "sd", State: Canceled, Created: t0, Finished: at(1), Error: errCanceled},
		[]string{"state", "state"}, nil)
	storeJob(t, dir, Job{ID: "00000000000000a1", Kind: "sd", State: Running, Created: *at(3), Started: at(4)},
		[]string{"state", "state", "step"}, map[string]string{"objects/half.png": "ha"})
	f, _ := os.OpenFile(filepath.Join(dir, "jobs", "00000000000000a1", eventsFile), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":4,"ty`) // the crash came in the middle of an append
	f.Close()
	// Queued jobs, created in the order q3 < q1 < q2 (not their names' order).
	storeJob(t, dir, Job{ID: "00000000000000c1", Kind: "sd", State: Queued, Created: *at(6)}, []string{"state"}, nil)
	storeJob(t, dir, Job{ID: "00000000000000c2", Kind: "sd", State: Queued, Created: *at(7)}, []string{"state"}, nil)
	storeJob(t, dir, Job{ID: "00000000000000c3", Kind: "sd", State: Queued, Created: *at(5)}, []string{"state"}, nil)
	storeJob(t, dir, Job{ID: "00000000000000e1", Kind: "video", State: Queued, Created: *at(8)}, []string{"state"}, nil)
	storeJob(t, dir, Job{ID: "00000000000000e2", Kind: "sd", State: Queued, Created: *at(9), Deadline: &past}, []string{"state"}, nil)
	// Unreadable folders are skipped.
	os.MkdirAll(filepath.Join(dir, "jobs", "00000000000000f1"), 0o755)
	os.WriteFile(filepath.Join(dir, "jobs", "00000000000000f1", jobFile), []byte(`{"id": "00000000000000f1", "sta`), 0o644)
	os.MkdirAll(filepath.Join(dir, "jobs", "00000000000000f2"), 0o755)
	// A temporary file of an atomic write cut short.
	os.WriteFile(filepath.Join(dir, "jobs", "00000000000000d1", "."+jobFile+".tmp-123"), []byte("{"), 0o644)

	var mu sync.Mutex
	var ran []string
	rebuild := func(kind string, request json.RawMessage) (Work, error) {
		if kind != "sd" {
			return nil, fmt.Errorf("unknown kind %q", kind)
		}
		var req struct{ Prompt string }
		if err := json.Unmarshal(request, &req); err != nil || req.Prompt != "p" {
			return nil, fmt.Errorf("request %s", request)
		}
		return func(ctx context.Context, dir string, r Reporter) (any, error) {
			mu.Lock()
			ran = append(ran, filepath.Base(filepath.Dir(dir)))
			mu.Unlock()
			return nil, nil
		}, nil
	}
	var finishedAtOpen []string
	q := openAt(t, dir, Options{Length: 1, Workers: 1, Rebuild: rebuild, OnFinish: func(j Job) {
		mu.Lock()
		finishedAtOpen = append(finishedAtOpen, j.ID)
		mu.Unlock()
	}})

	// Finished jobs are served as they were.
	j, err := q.Get("00000000000000d1")
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, j, Succeeded, "")
	if path, err := q.File(j.ID, "image.png"); err != nil {
		t.Fatal(err)
	} else if data, _ := os.ReadFile(path); string(data) != "png" {
		t.Fatalf("recovered file holds %q", data)
	}
	if events, live, stop, _ := q.Events(j.ID, 0); len(events) != 3 || live != nil {
		t.Fatalf("recovered finished job: %d events, live %v; want 3 and none", len(events), live)
	} else {
		stop()
	}
	if temps, _ := filepath.Glob(filepath.Join(dir, "jobs", j.ID, ".*.tmp-*")); len(temps) != 0 {
		t.Fatalf("temporary files left: %v", temps)
	}

	// The running job failed; its partial files are gone; its events go on after the torn line.
	j, _ = q.Get("00000000000000a1")
	wantState(t, j, Failed, errInterrupted)
	if _, err := os.Stat(filepath.Join(dir, "jobs", j.ID, filesDir)); !os.IsNotExist(err) {
		t.Fatalf("an interrupted job's partial files are still there (%v)", err)
	}
	events, _, stop, _ := q.Events(j.ID, 0)
	stop()
	if got := types(events); !reflect.DeepEqual(got, []string{"state", "state", "step", "state"}) || events[3].Seq != 4 {
		t.Fatalf("interrupted job's events %v, want the three stored and a final state with seq 4", got)
	}
	if stored, _ := readJob(filepath.Join(dir, "jobs", j.ID)); stored.State != Failed {
		t.Fatalf("interrupted job stored as %s, want failed", stored.State)
	}

	// Queued jobs run in the order they were created, beyond Length (they were accepted).
	for _, id := range []string{"00000000000000c3", "00000000000000c1", "00000000000000c2"} {
		wantState(t, wait(t, q, id), Succeeded, "")
	}
	mu.Lock()
	if want := []string{"00000000000000c3", "00000000000000c1", "00000000000000c2"}; !reflect.DeepEqual(ran, want) {
		t.Fatalf("requeued jobs ran in order %v, want %v", ran, want)
	}
	mu.Unlock()
	j, _ = q.Get("00000000000000e1")
	wantState(t, j, Failed, `requeue after a restart: unknown kind "video"`)
	j, _ = q.Get("00000000000000e2")
	if j.State != Failed || j.Error == "" || j.Error[:17] != "deadline exceeded" {
		t.Fatalf("requeued job past its deadline: %s %q, want failed for its deadline", j.State, j.Error)
	}

	// The skipped folders are not jobs.
	for _, id := range []string{"00000000000000f1", "00000000000000f2"} {
		if _, err := q.Get(id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unreadable job %s: %v, want ErrNotFound", id, err)
		}
	}
	if n := len(q.List()); n != 8 {
		t.Fatalf("list has %d jobs, want the 8 readable ones", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(finishedAtOpen) != 6 {
		t.Fatalf("OnFinish called for %v, want the interrupted, 2 failed requeues and 3 requeued runs", finishedAtOpen)
	}
}

func TestOpenWithoutRebuildFailsQueuedJobs(t *testing.T) {
	dir := t.TempDir()
	storeJob(t, dir, Job{ID: "00000000000000c1", Kind: "sd", State: Queued, Created: time.Now()}, []string{"state"}, nil)
	q := openAt(t, dir, Options{Length: 1, Workers: 1})
	j, _ := q.Get("00000000000000c1")
	wantState(t, j, Failed, "interrupted: the server restarted and cannot queue this job again")
}

// A queue shut down with a job still queued runs it after the next Open.
func TestShutdownThenOpenRunsTheQueuedJob(t *testing.T) {
	q, dir := openQueue(t, Options{Length: 5, Workers: 1})
	b := newBlocker()
	first := submit(t, q, b.work)
	recv(t, b.started, "the first job's start")
	queued := submit(t, q, quick)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.Shutdown(ctx)
	wantState(t, wait(t, q, first.ID), Canceled, errShutdown)

	q2 := openAt(t, dir, Options{Length: 5, Workers: 1, Rebuild: func(string, json.RawMessage) (Work, error) { return quick, nil }})
	j := wait(t, q2, queued.ID)
	wantState(t, j, Succeeded, "")
	events, _, stop, _ := q2.Events(j.ID, 0)
	stop()
	if got := types(events); !reflect.DeepEqual(got, []string{"state", "state", "state"}) {
		t.Fatalf("requeued job's events %v, want queued, running, succeeded", got)
	}
	j, _ = q2.Get(first.ID)
	wantState(t, j, Canceled, errShutdown)
}
