package jobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testWait bounds every wait of a test, so that a bug shows as a failure, not a hang.
const testWait = 10 * time.Second

// openQueue opens a queue in a fresh folder and shuts it down when the test ends.
func openQueue(t *testing.T, o Options) (*Queue, string) {
	t.Helper()
	dir := t.TempDir()
	return openAt(t, dir, o), dir
}

// openAt opens a queue on dir and shuts it down (canceling what runs) when the test ends.
func openAt(t *testing.T, dir string, o Options) *Queue {
	t.Helper()
	q, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		q.Shutdown(ctx)
	})
	return q
}

// submit submits a job or fails the test.
func submit(t *testing.T, q *Queue, work Work) Job {
	t.Helper()
	j, err := q.Submit("test", map[string]string{"prompt": "p"}, 0, work)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// wait waits for a job to finish, failing the test after testWait.
func wait(t *testing.T, q *Queue, id string) Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	j, err := q.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for job %s: %v", id, err)
	}
	return j
}

// recv receives from ch, failing the test after testWait.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testWait):
		t.Fatalf("%s did not happen within %v", what, testWait)
		panic("unreachable")
	}
}

// blocker is a Work that says when it started and then runs until release is closed
// (returning nil) or its ctx ends (returning the ctx's error).
type blocker struct {
	started chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}), release: make(chan struct{})}
}

func (b *blocker) work(ctx context.Context, dir string, r Reporter) (any, error) {
	close(b.started)
	if err := os.WriteFile(filepath.Join(dir, "partial.bin"), []byte("half"), 0o644); err != nil {
		return nil, err
	}
	select {
	case <-b.release:
		return "released", nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// quick is a Work that writes one file and returns.
func quick(ctx context.Context, dir string, r Reporter) (any, error) {
	return map[string]int{"n": 1}, os.WriteFile(filepath.Join(dir, "out.txt"), []byte("done"), 0o644)
}

// wantState checks a finished job's state and error.
func wantState(t *testing.T, j Job, state State, msg string) {
	t.Helper()
	if j.State != state || j.Error != msg {
		t.Fatalf("job %s: state %s, error %q; want %s, %q", j.ID, j.State, j.Error, state, msg)
	}
}

// isNotFound checks that err is ErrNotFound.
func isNotFound(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: error %v, want ErrNotFound", what, err)
	}
}

// drain receives from ch until it is closed, failing the test after testWait.
func drain(t *testing.T, ch <-chan Event) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(testWait)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("the events channel was not closed within %v", testWait)
		}
	}
}
