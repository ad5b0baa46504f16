package jobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestJobsRunInSubmitOrder(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 10, Workers: 1})
	first := newBlocker()
	j0 := submit(t, q, first.work)
	recv(t, first.started, "the first job's start")

	var mu sync.Mutex
	var order []string
	var ids []string
	for range 5 {
		var j Job
		j = submit(t, q, func(ctx context.Context, dir string, r Reporter) (any, error) {
			mu.Lock()
			order = append(order, j.ID)
			mu.Unlock()
			return nil, nil
		})
		ids = append(ids, j.ID)
	}
	close(first.release)
	wait(t, q, j0.ID)
	for _, id := range ids {
		wantState(t, wait(t, q, id), Succeeded, "")
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(order, ids) {
		t.Fatalf("ran in order %v, want the submit order %v", order, ids)
	}
}

// Three workers run three jobs at once: each job waits until all three have started.
func TestWorkersRunJobsAtOnce(t *testing.T) {
	const workers = 3
	q, _ := openQueue(t, Options{Length: 10, Workers: workers})
	var started sync.WaitGroup
	started.Add(workers)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	var ids []string
	for range workers {
		j := submit(t, q, func(ctx context.Context, dir string, r Reporter) (any, error) {
			started.Done()
			select {
			case <-all:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		ids = append(ids, j.ID)
	}
	recv(t, all, "all three jobs running at once")
	for _, id := range ids {
		wantState(t, wait(t, q, id), Succeeded, "")
	}
}

func TestSubmitBeyondLengthIsErrFull(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 2, Workers: 1})
	b := newBlocker()
	running := submit(t, q, b.work)
	recv(t, b.started, "the first job's start")
	submit(t, q, quick)
	submit(t, q, quick)
	if _, err := q.Submit("test", nil, 0, quick); !errors.Is(err, ErrFull) {
		t.Fatalf("third waiting job: error %v, want ErrFull", err)
	}
	if s := q.Stats(); s.Queued != 2 || s.Running != 1 || s.ByState[Queued] != 2 || s.ByState[Running] != 1 {
		t.Fatalf("stats %+v, want 2 queued and 1 running", s)
	}
	close(b.release)
	wait(t, q, running.ID)
}

// With Length 0 a job is taken only when a worker is free to start it.
func TestLengthZeroTakesOnlyWhatAWorkerCanStart(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 0, Workers: 1})
	b := newBlocker()
	j := submit(t, q, b.work)
	if _, err := q.Submit("test", nil, 0, quick); !errors.Is(err, ErrFull) {
		t.Fatalf("second job with the worker taken: error %v, want ErrFull", err)
	}
	close(b.release)
	wait(t, q, j.ID)
	wantState(t, wait(t, q, submit(t, q, quick).ID), Succeeded, "")
}

func TestCancelQueuedNeverRuns(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 5, Workers: 1})
	b := newBlocker()
	first := submit(t, q, b.work)
	recv(t, b.started, "the first job's start")
	var ran atomic.Bool
	j := submit(t, q, func(ctx context.Context, dir string, r Reporter) (any, error) {
		ran.Store(true)
		return nil, nil
	})
	got, err := q.Cancel(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, got, Canceled, errCanceled)
	close(b.release)
	wait(t, q, first.ID)
	if ran.Load() {
		t.Fatal("a job canceled while queued ran")
	}
	if got.Started != nil || got.Finished == nil {
		t.Fatalf("canceled queued job: started %v, finished %v; want no start and a finish", got.Started, got.Finished)
	}
	// Canceling a finished job changes nothing.
	again, err := q.Cancel(j.ID)
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("cancel of a finished job: %+v, %v; want it unchanged", again, err)
	}
	if _, err := q.Cancel("0123456789abcdef"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancel of an unknown job: %v, want ErrNotFound", err)
	}
}

func TestCancelRunningStopsItsWork(t *testing.T) {
	q, dir := openQueue(t, Options{Length: 5, Workers: 1})
	b := newBlocker()
	j := submit(t, q, b.work)
	recv(t, b.started, "the job's start")
	got, err := q.Cancel(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != Running {
		t.Fatalf("cancel of a running job returned state %s, want running until its Work returns", got.State)
	}
	done := wait(t, q, j.ID)
	wantState(t, done, Canceled, errCanceled)
	if _, err := os.Stat(filepath.Join(dir, "jobs", j.ID, filesDir)); !os.IsNotExist(err) {
		t.Fatalf("a canceled job's files are still there (%v)", err)
	}
	if len(done.Files) != 0 {
		t.Fatalf("a canceled job lists files %v", done.Files)
	}
}

func TestDeadlineFailsARunningJob(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 5, Workers: 1})
	// Long enough for an idle worker to take the job even on a loaded machine.
	b := newBlocker()
	j, err := q.Submit("test", nil, 300*time.Millisecond, b.work)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, b.started, "the job's start")
	wantState(t, wait(t, q, j.ID), Failed, "deadline exceeded after 300ms")
}

func TestDeadlineFailsAQueuedJobWithoutRunningIt(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 5, Workers: 1})
	b := newBlocker()
	first := submit(t, q, b.work)
	recv(t, b.started, "the first job's start")
	var ran atomic.Bool
	j, err := q.Submit("test", nil, 20*time.Millisecond, func(ctx context.Context, dir string, r Reporter) (any, error) {
		ran.Store(true)
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, wait(t, q, j.ID), Failed, "deadline exceeded after 20ms while queued")
	close(b.release)
	wait(t, q, first.ID)
	if ran.Load() {
		t.Fatal("a job whose deadline passed in the queue ran")
	}
}

func TestPanicFailsTheJobAndTheWorkerGoesOn(t *testing.T) {
	q, dir := openQueue(t, Options{Length: 5, Workers: 1})
	j := submit(t, q, func(ctx context.Context, dir string, r Reporter) (any, error) {
		os.WriteFile(filepath.Join(dir, "half.png"), []byte("x"), 0o644)
		panic("boom")
	})
	wantState(t, wait(t, q, j.ID), Failed, "panic: boom")
	if _, err := os.Stat(filepath.Join(dir, "jobs", j.ID, filesDir)); !os.IsNotExist(err) {
		t.Fatalf("a panicked job's files are still there (%v)", err)
	}
	wantState(t, wait(t, q, submit(t, q, quick).ID), Succeeded, "")
}

func TestSucceededJobListsFilesAndResult(t *testing.T) {
	var finished []Job
	var mu sync.Mutex
	q, _ := openQueue(t, Options{Length: 5, Workers: 1, OnFinish: func(j Job) {
		mu.Lock()
		finished = append(finished, j)
		mu.Unlock()
	}})
	j := submit(t, q, func(ctx context.Context, dir string, r Reporter) (any, error) {
		os.MkdirAll(filepath.Join(dir, "objects"), 0o755)
		for _, name := range []string{"image.png", "objects/00-mouse.png", "plan.json"} {
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(name), 0o644); err != nil {
				return nil, err
			}
		}
		r.Timing("denoise", 1.5)
		return map[string]any{"seed": 7}, nil
	})
	got := wait(t, q, j.ID)
	wantState(t, got, Succeeded, "")
	if want := []string{"image.png", "objects/00-mouse.png", "plan.json"}; !reflect.DeepEqual(got.Files, want) {
		t.Fatalf("files %v, want %v", got.Files, want)
	}
	if string(got.Result) != `{"seed":7}` || string(got.Request) != `{"prompt":"p"}` {
		t.Fatalf("result %s, request %s", got.Result, got.Request)
	}
	if got.Seconds["denoise"] != 1.5 || got.Seconds["queued"] < 0 || got.Seconds["run"] <= 0 {
		t.Fatalf("seconds %v, want denoise 1.5, queued and run", got.Seconds)
	}
	if got.Progress.Fraction != 1 || got.Started == nil || got.Finished == nil {
		t.Fatalf("finished job: progress %+v, started %v, finished %v", got.Progress, got.Started, got.Finished)
	}
	path, err := q.File(j.ID, "objects/00-mouse.png")
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "objects/00-mouse.png" {
		t.Fatalf("file holds %q", data)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(finished) != 1 || finished[0].ID != j.ID || finished[0].State != Succeeded {
		t.Fatalf("OnFinish got %+v, want the one succeeded job once", finished)
	}
}

func TestListIsNewestFirst(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 5, Workers: 1})
	var ids []string
	for range 3 {
		ids = append(ids, wait(t, q, submit(t, q, quick).ID).ID)
	}
	var got []string
	for _, j := range q.List() {
		got = append(got, j.ID)
	}
	if want := []string{ids[2], ids[1], ids[0]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	if _, err := q.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of an unknown job: %v, want ErrNotFound", err)
	}
}

func TestFileRefusesPathsOutOfTheJob(t *testing.T) {
	q, dir := openQueue(t, Options{Length: 5, Workers: 1})
	secret := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(secret, []byte("secret"), 0o644)
	j := submit(t, q, func(ctx context.Context, dir string, r Reporter) (any, error) {
		os.Mkdir(filepath.Join(dir, "sub"), 0o755)
		os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte("b"), 0o644)
		os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644)
		os.Symlink(secret, filepath.Join(dir, "link.txt"))
		os.Symlink(filepath.Dir(secret), filepath.Join(dir, "linkdir"))
		return nil, nil
	})
	got := wait(t, q, j.ID)
	if want := []string{"a.txt", "sub/b.txt"}; !reflect.DeepEqual(got.Files, want) {
		t.Fatalf("files %v, want only the regular ones %v", got.Files, want)
	}
	for _, name := range []string{"a.txt", "sub/b.txt"} {
		if _, err := q.File(j.ID, name); err != nil {
			t.Fatalf("file %q: %v", name, err)
		}
	}
	for _, name := range []string{
		"", ".", "..", "../job.json", "../events.jsonl", "sub/../../job.json", "sub/../a.txt",
		"/etc/passwd", secret, "link.txt", "linkdir/secret.txt", `sub\b.txt`, "sub/", "missing.txt",
	} {
		_, err := q.File(j.ID, name)
		isNotFound(t, err, "file "+name)
	}
	// A listed file swapped for a link after the job finished is refused too.
	a := filepath.Join(dir, "jobs", j.ID, filesDir, "a.txt")
	os.Remove(a)
	os.Symlink(secret, a)
	_, err := q.File(j.ID, "a.txt")
	isNotFound(t, err, "a listed file turned into a link")
	_, err = q.File("../../etc", "passwd")
	isNotFound(t, err, "a job id with a path in it")

	b := newBlocker()
	live := submit(t, q, b.work)
	recv(t, b.started, "the job's start")
	_, err = q.File(live.ID, "partial.bin")
	isNotFound(t, err, "a running job's file")
	close(b.release)
	wait(t, q, live.ID)
}

// Shutdown with time to spare lets the running job finish and keeps the queued one.
func TestShutdownLetsRunningJobsFinish(t *testing.T) {
	q, dir := openQueue(t, Options{Length: 5, Workers: 1})
	b := newBlocker()
	running := submit(t, q, b.work)
	recv(t, b.started, "the job's start")
	queued := submit(t, q, quick)

	stopped := make(chan error)
	go func() { stopped <- q.Shutdown(context.Background()) }()
	for {
		if _, err := q.Submit("test", nil, 0, quick); errors.Is(err, ErrClosed) {
			break
		}
		time.Sleep(time.Millisecond) // Shutdown has not closed the queue yet
	}
	close(b.release)
	if err := recv(t, stopped, "shutdown"); err != nil {
		t.Fatal(err)
	}
	j, _ := q.Get(running.ID)
	wantState(t, j, Succeeded, "")
	j, _ = q.Get(queued.ID)
	wantState(t, j, Queued, "")
	stored, err := readJob(filepath.Join(dir, "jobs", queued.ID))
	if err != nil || stored.State != Queued {
		t.Fatalf("the queued job on disk: %+v, %v; want queued", stored, err)
	}
}

// Shutdown past its context cancels the running job and waits for its Work.
func TestShutdownCancelsWhatStillRuns(t *testing.T) {
	q, _ := openQueue(t, Options{Length: 5, Workers: 1})
	b := newBlocker()
	running := submit(t, q, b.work)
	recv(t, b.started, "the job's start")
	queued := submit(t, q, quick)
	_, live, stop, err := q.Events(queued.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	waited := make(chan error)
	go func() {
		_, err := q.Wait(context.Background(), queued.ID)
		waited <- err
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := q.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v, want the context's deadline", err)
	}
	// What waits on the job left queued is let go.
	if err := recv(t, waited, "the wait on the queued job"); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait on a job left queued: %v, want ErrClosed", err)
	}
	drain(t, live)
	if _, live, _, _ := q.Events(queued.ID, 0); live != nil {
		t.Fatal("events of a job left queued by Shutdown have a live channel")
	}
	j, _ := q.Get(running.ID)
	wantState(t, j, Canceled, errShutdown)
	j, _ = q.Get(queued.ID)
	wantState(t, j, Queued, "")
	if _, err := q.Submit("test", nil, 0, quick); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after shutdown: %v, want ErrClosed", err)
	}
}

// Two queues on one store would take each other's running jobs for interrupted ones.
func TestOpenRefusesAStoreInUse(t *testing.T) {
	q, dir := openQueue(t, Options{Length: 1, Workers: 1})
	if _, err := Open(dir, Options{Length: 1, Workers: 1}); err == nil || !strings.Contains(err.Error(), "in use by another server") {
		t.Fatalf("second Open of a store in use: %v, want it refused", err)
	}
	q.Shutdown(context.Background())
	q2, err := Open(dir, Options{Length: 1, Workers: 1})
	if err != nil {
		t.Fatalf("Open after Shutdown: %v", err)
	}
	q2.Shutdown(context.Background())
}

func TestOpenRefusesBadOptions(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Workers: 0}, "workers 0"},
		{Options{Workers: 1, Length: -1}, "queue length -1"},
	} {
		if _, err := Open(t.TempDir(), c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("open with %+v: %v, want an error naming %q", c.o, err, c.want)
		}
	}
}
