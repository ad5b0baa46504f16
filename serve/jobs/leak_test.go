package jobs

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// After Shutdown nothing the queue started is left: workers, deadline timers, the
// subscriptions of stopped and of dropped subscribers.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	q, err := Open(t.TempDir(), Options{Length: 10, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		wait(t, q, submit(t, q, steps).ID)
	}
	b := newBlocker()
	running, _ := q.Submit("test", nil, time.Hour, b.work)
	recv(t, b.started, "the job's start")
	for range 4 {
		q.Submit("test", nil, time.Hour, newBlocker().work) // two run, two stay queued with armed deadlines
	}
	_, live, stop, err := q.Events(running.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, stop2, _ := q.Events(running.ID, 0)
	stop2()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	q.Shutdown(ctx)
	drain(t, live)
	stop()

	deadline := time.Now().Add(testWait)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Shutdown, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond) // goroutines that returned may take a moment to be counted out
	}
}
