package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Queue is a bounded FIFO queue of jobs run by a fixed number of workers, with its store
// on disk. All its methods are safe for concurrent use.
type Queue struct {
	dir  string // the folder given to Open; jobs live in dir/jobs
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond // signaled when a job is queued or the queue closes
	jobs    map[string]*entry
	all     []*entry // in creation order, for List
	waiting []*entry // queued jobs in FIFO order
	running int      // jobs a worker has taken
	storing int      // Submits writing their job to disk, each holding a place in the line
	count   map[State]int
	closed  bool

	workers sync.WaitGroup
	stopped chan struct{} // closed when Shutdown has seen the workers end
	stopOne sync.Once
	unlock  func() // releases the store's lock (lockStore)
}

// entry is the queue's record of one job.
type entry struct {
	job  Job           // guarded by Queue.mu
	done chan struct{} // closed once the job is final, stored and its last event emitted

	// Guarded by Queue.mu.
	work     Work               // set while queued
	timer    *time.Timer        // fails the job if its deadline passes while it waits
	cancel   context.CancelFunc // set while running
	reason   string             // why the queue stopped a running job: errCanceled or errShutdown
	lastStep time.Time          // the last Progress call, for OnStep
	written  time.Time          // the last time job.json was written

	report sync.Mutex // serializes one job's Reporter calls, so their events keep their order
	write  sync.Mutex // serializes job.json writes, so that the last one holds the newest state
	events eventLog
}

// Open opens (or creates) the store under dir, recovers the jobs it holds (see the
// package doc) and starts the workers.
func Open(dir string, o Options) (*Queue, error) {
	switch {
	case dir == "":
		return nil, errors.New("jobs: no folder given for the store")
	case o.Workers < 1:
		return nil, fmt.Errorf("jobs: workers %d: want at least 1", o.Workers)
	case o.Length < 0:
		return nil, fmt.Errorf("jobs: queue length %d: want 0 or more", o.Length)
	}
	q := &Queue{dir: dir, opts: o, log: o.Log, jobs: map[string]*entry{}, count: map[State]int{}, stopped: make(chan struct{})}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	q.cond = sync.NewCond(&q.mu)
	if err := os.MkdirAll(filepath.Join(dir, "jobs"), 0o755); err != nil {
		return nil, fmt.Errorf("jobs: store: %w", err)
	}
	unlock, err := lockStore(dir)
	if err != nil {
		return nil, err
	}
	q.unlock = unlock
	if err := q.recover(); err != nil {
		unlock()
		return nil, err
	}
	for range o.Workers {
		q.workers.Add(1)
		go q.worker()
	}
	return q, nil
}

func (q *Queue) jobDir(id string) string { return filepath.Join(q.dir, "jobs", id) }

// newEntry makes the record of a job (not yet indexed).
func (q *Queue) newEntry(j Job) *entry {
	e := &entry{job: j, done: make(chan struct{})}
	e.events.path = filepath.Join(q.jobDir(j.ID), eventsFile)
	return e
}

// index adds e to the maps and counts; q.mu is held.
func (q *Queue) index(e *entry) {
	q.jobs[e.job.ID] = e
	q.all = append(q.all, e)
	q.count[e.job.State]++
}

// setState moves e to s, keeping the counts; q.mu is held.
func (q *Queue) setState(e *entry, s State) {
	q.count[e.job.State]--
	q.count[s]++
	e.job.State = s
}

// newID returns 16 hex characters from crypto/rand that no job has; q.mu is held.
func (q *Queue) newID() string {
	for {
		var b [8]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if _, taken := q.jobs[id]; !taken {
			if _, err := os.Lstat(q.jobDir(id)); os.IsNotExist(err) {
				return id
			}
		}
	}
}

// Submit queues a job of the given kind. request is JSON-encoded into Job.Request (and
// handed to Rebuild after a restart); timeout 0 means no deadline, else the deadline
// starts now and covers the wait in the queue as well as the run.
func (q *Queue) Submit(kind string, request any, timeout time.Duration, work Work) (Job, error) {
	switch {
	case kind == "":
		return Job{}, errors.New("jobs: submit: no kind")
	case work == nil:
		return Job{}, errors.New("jobs: submit: no work")
	case timeout < 0:
		return Job{}, fmt.Errorf("jobs: submit: timeout %v: want 0 (none) or more", timeout)
	}
	req, err := json.Marshal(request)
	if err != nil {
		return Job{}, fmt.Errorf("jobs: submit: encode the request: %w", err)
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return Job{}, ErrClosed
	}
	// A job that an idle worker takes at once does not wait, so Length counts only those
	// beyond the idle workers. Jobs being stored count as waiting: their slot is held
	// while their files are written without the lock.
	if idle := q.opts.Workers - q.running; len(q.waiting)+q.storing-idle >= q.opts.Length {
		q.mu.Unlock()
		return Job{}, ErrFull
	}
	q.storing++
	id := q.newID()
	q.mu.Unlock()

	now := time.Now().UTC()
	j := Job{ID: id, Kind: kind, State: Queued, Created: now, Request: req}
	if timeout > 0 {
		d := now.Add(timeout)
		j.Deadline = &d
	}
	e := q.newEntry(j)
	// The folder, job.json and the first event are on disk before anyone hears of the job.
	dir := q.jobDir(id)
	err = os.Mkdir(dir, 0o755)
	if err == nil {
		err = writeJob(dir, j)
	}
	if err == nil {
		err = syncDir(filepath.Dir(dir))
	}
	if err == nil {
		err = q.emitState(e, Queued, "", false)
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	q.storing--
	if err == nil && q.closed {
		err = ErrClosed
	}
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, ErrClosed) {
			return Job{}, err
		}
		return Job{}, fmt.Errorf("jobs: submit: %w", err)
	}
	e.work = work
	q.index(e)
	q.enqueue(e)
	return j.clone(), nil
}

// enqueue puts a queued entry at the end of the line and arms its deadline; q.mu is held.
func (q *Queue) enqueue(e *entry) {
	q.waiting = append(q.waiting, e)
	if e.job.Deadline != nil {
		e.timer = time.AfterFunc(time.Until(*e.job.Deadline), func() { q.expireQueued(e) })
	}
	q.cond.Signal()
}

// Get returns the job's live state.
func (q *Queue) Get(id string) (Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: job %q", ErrNotFound, id)
	}
	return e.job.clone(), nil
}

// List returns every job, newest first.
func (q *Queue) List() []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Job, 0, len(q.all))
	for i := len(q.all) - 1; i >= 0; i-- {
		out = append(out, q.all[i].job.clone())
	}
	return out
}

// Stats counts the jobs.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Queued: len(q.waiting), Running: q.running, ByState: make(map[State]int, len(States))}
	for _, st := range States {
		s.ByState[st] = q.count[st]
	}
	return s
}

// Cancel stops a job. A queued job is canceled at once and never runs; a running one
// is asked to stop (its ctx ends) and turns canceled when its Work has returned; a
// finished one is left as it is. It returns the job as it is after the call.
func (q *Queue) Cancel(id string) (Job, error) {
	q.mu.Lock()
	e, ok := q.jobs[id]
	if !ok {
		q.mu.Unlock()
		return Job{}, fmt.Errorf("%w: job %q", ErrNotFound, id)
	}
	switch e.job.State {
	case Queued:
		q.unqueue(e)
		q.mu.Unlock()
		q.finish(e, Canceled, errCanceled)
		return q.Get(id)
	case Running:
		if e.reason == "" {
			e.reason = errCanceled
			e.cancel()
		}
	}
	j := e.job.clone()
	q.mu.Unlock()
	return j, nil
}

// unqueue takes a queued entry out of the line and disarms its deadline; q.mu is held.
func (q *Queue) unqueue(e *entry) {
	for i, w := range q.waiting {
		if w == e {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			break
		}
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.work = nil
}

// expireQueued fails a job whose deadline passed before a worker took it.
func (q *Queue) expireQueued(e *entry) {
	q.mu.Lock()
	if e.job.State != Queued || q.closed {
		q.mu.Unlock()
		return // started, canceled, or kept queued on disk for the next Open
	}
	q.unqueue(e)
	msg := deadlineError(e.job) + " while queued"
	q.mu.Unlock()
	q.finish(e, Failed, msg)
}

// deadlineError is the error of a job whose deadline passed.
func deadlineError(j Job) string {
	return fmt.Sprintf("deadline exceeded after %v", j.Deadline.Sub(j.Created).Round(time.Millisecond))
}

// Wait returns the job once it is final, or ctx's error when ctx ends first. A job left
// queued by Shutdown will not finish here: Wait then returns it with ErrClosed.
func (q *Queue) Wait(ctx context.Context, id string) (Job, error) {
	q.mu.Lock()
	e, ok := q.jobs[id]
	q.mu.Unlock()
	if !ok {
		return Job{}, fmt.Errorf("%w: job %q", ErrNotFound, id)
	}
	select {
	case <-e.done:
		return q.Get(id)
	case <-ctx.Done():
		return Job{}, ctx.Err()
	case <-q.stopped:
		select {
		case <-e.done: // finished while the queue stopped
			return q.Get(id)
		default:
			j, _ := q.Get(id)
			return j, ErrClosed
		}
	}
}

// Events returns the job's events with Seq > after and, while the job is not final, a
// channel of the later ones, closed after the final event (or when the subscriber falls
// too far behind: then resubscribe from the last Seq received). live is nil for a final
// job, and after Shutdown (which closes the channels of jobs it leaves queued). stop
// releases the subscription; call it always.
func (q *Queue) Events(id string, after int) (past []Event, live <-chan Event, stop func(), err error) {
	q.mu.Lock()
	e, ok := q.jobs[id]
	q.mu.Unlock()
	if !ok {
		return nil, nil, func() {}, fmt.Errorf("%w: job %q", ErrNotFound, id)
	}
	past, live, stop, err = e.events.subscribe(after)
	if err != nil {
		return nil, nil, stop, fmt.Errorf("jobs: events of %s: %w", id, err)
	}
	return past, live, stop, nil
}

// File returns the path of a finished job's file. name is one of Job.Files; anything
// else (a path out of the folder, a symbolic link, a file the job did not list) is
// ErrNotFound.
func (q *Queue) File(id, name string) (string, error) {
	j, err := q.Get(id)
	if err != nil {
		return "", err
	}
	if j.State != Succeeded {
		return "", fmt.Errorf("%w: job %s is %s: its files appear when it succeeds", ErrNotFound, id, j.State)
	}
	if !validName(name) || !listed(j.Files, name) {
		return "", fmt.Errorf("%w: job %s has no file %q", ErrNotFound, id, name)
	}
	root, err := os.OpenRoot(filepath.Join(q.jobDir(id), filesDir))
	if err != nil {
		return "", fmt.Errorf("%w: job %s: %v", ErrNotFound, id, err)
	}
	defer root.Close()
	// os.Root refuses a path that leaves the folder, through ".." or a link; Lstat
	// refuses a last element that was swapped for a link after the job finished.
	fi, err := root.Lstat(filepath.FromSlash(name))
	if err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: job %s has no file %q", ErrNotFound, id, name)
	}
	return filepath.Join(q.jobDir(id), filesDir, filepath.FromSlash(name)), nil
}

// listed reports whether name is in the sorted list files.
func listed(files []string, name string) bool {
	lo, hi := 0, len(files)
	for lo < hi {
		m := (lo + hi) / 2
		if files[m] < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(files) && files[lo] == name
}

// Shutdown stops taking jobs (Submit returns ErrClosed), waits for the running ones
// until ctx ends, then cancels them (they end canceled, "canceled: the server shut
// down") and waits for their Works to return. Queued jobs stay queued on disk for the
// next Open, which may come once Shutdown has returned (it releases the store's lock).
// It returns ctx's error when it had to cancel jobs. Calling it again waits the same way.
func (q *Queue) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	for _, e := range q.waiting {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
	}
	q.cond.Broadcast()
	q.mu.Unlock()

	idle := make(chan struct{})
	go func() { q.workers.Wait(); close(idle) }()
	select {
	case <-idle:
		q.stop()
		return nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	for _, e := range q.all {
		if e.job.State == Running && e.reason == "" {
			e.reason = errShutdown
			e.cancel()
		}
	}
	q.mu.Unlock()
	<-idle
	q.stop()
	return ctx.Err()
}

// stop ends what waits on jobs that no worker will run now: Waits return ErrClosed and
// event subscribers are hung up (they may come back after the next Open). The store's
// lock goes, so that the next Open may come.
func (q *Queue) stop() {
	q.stopOne.Do(func() {
		q.unlock()
		close(q.stopped)
		q.mu.Lock()
		left := slices.Clone(q.waiting)
		q.mu.Unlock()
		for _, e := range left {
			e.events.hangUp()
		}
	})
}
