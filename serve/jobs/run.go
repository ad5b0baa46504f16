package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"
)

// worker takes queued jobs in order and runs them until the queue closes.
func (q *Queue) worker() {
	defer q.workers.Done()
	for {
		q.mu.Lock()
		for len(q.waiting) == 0 && !q.closed {
			q.cond.Wait()
		}
		if q.closed {
			q.mu.Unlock()
			return
		}
		e := q.waiting[0]
		q.waiting = q.waiting[1:]
		work := e.work
		ctx, cancel := q.start(e)
		q.mu.Unlock()
		q.run(ctx, e, work)
		cancel()
	}
}

// start moves a taken entry to running; q.mu is held.
func (q *Queue) start(e *entry) (context.Context, context.CancelFunc) {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.work = nil
	now := time.Now().UTC()
	q.setState(e, Running)
	q.running++
	e.job.Started = &now
	e.job.Seconds = map[string]float64{"queued": now.Sub(e.job.Created).Seconds()}
	e.written = now
	var ctx context.Context
	var cancel context.CancelFunc
	if e.job.Deadline != nil {
		ctx, cancel = context.WithDeadline(context.Background(), *e.job.Deadline)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	e.cancel = cancel
	return ctx, cancel
}

// run runs one job's Work and settles its final state.
func (q *Queue) run(ctx context.Context, e *entry, work Work) {
	id := e.job.ID
	if err := q.persist(e); err != nil {
		q.log.Error("jobs: store the running state", "job", id, "err", err)
	}
	q.emitState(e, Running, "", false)

	dir := filepath.Join(q.jobDir(id), filesDir)
	result, err := q.call(ctx, e, work, dir)

	q.mu.Lock()
	reason, deadline := e.reason, ""
	if e.job.Deadline != nil {
		deadline = deadlineError(e.job)
	}
	q.mu.Unlock()
	var files []string
	var res json.RawMessage
	if err == nil {
		files, res, err = q.keep(dir, result)
	}
	state, msg := Succeeded, ""
	switch {
	case err == nil:
	case reason != "":
		state, msg = Canceled, reason
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		state, msg = Failed, deadline
	default:
		state, msg = Failed, err.Error()
	}
	if state != Succeeded {
		if rerr := os.RemoveAll(dir); rerr != nil {
			q.log.Error("jobs: remove the files of a job that did not succeed", "job", id, "err", rerr)
		}
	}
	// Only this worker settles a running job (Cancel and Shutdown only end its ctx), so
	// the state is final here without finish's check.
	q.mu.Lock()
	q.running--
	e.job.Files, e.job.Result = files, res
	if state == Succeeded {
		e.job.Progress.Fraction = 1
	}
	q.setFinal(e, state, msg)
	q.mu.Unlock()
	q.settle(e)
}

// call runs work in a fresh folder, turning a panic into an error.
func (q *Queue) call(ctx context.Context, e *entry, work Work, dir string) (result any, err error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("jobs: files: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("jobs: files: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("jobs: a job panicked", "job", e.job.ID, "kind", e.job.Kind, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return work(ctx, dir, reporter{q, e})
}

// keep syncs a succeeded job's files and encodes its result.
func (q *Queue) keep(dir string, result any) ([]string, json.RawMessage, error) {
	files, err := collectFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, nil, err
	}
	if result == nil {
		return files, nil, nil
	}
	res, err := json.Marshal(result)
	if err != nil {
		return nil, nil, fmt.Errorf("jobs: encode the result: %w", err)
	}
	return files, res, nil
}

// finish settles a queued job (canceled, past its deadline, not rebuilt). The final
// state is decided here once: a job that started or finished meanwhile is left alone.
func (q *Queue) finish(e *entry, state State, msg string) {
	q.mu.Lock()
	if e.job.State != Queued {
		q.mu.Unlock()
		return
	}
	q.setFinal(e, state, msg)
	q.mu.Unlock()
	q.settle(e)
}

// setFinal records a final state in memory; q.mu is held.
func (q *Queue) setFinal(e *entry, state State, msg string) {
	now := time.Now().UTC()
	q.setState(e, state)
	e.job.Finished = &now
	e.job.Error = msg
	if e.job.Started != nil {
		if e.job.Seconds == nil {
			e.job.Seconds = map[string]float64{}
		}
		e.job.Seconds["run"] = now.Sub(*e.job.Started).Seconds()
	}
	e.cancel = nil
}

// settle stores a job's final state, announces it as the last event, tells OnFinish,
// and only then lets Wait return. A job whose success cannot be stored fails instead, since a restart
// would not find it whole.
func (q *Queue) settle(e *entry) {
	id := e.job.ID
	if err := q.persist(e); err != nil {
		q.log.Error("jobs: store the final state", "job", id, "err", err)
		q.mu.Lock()
		succeeded := e.job.State == Succeeded
		if succeeded {
			q.setState(e, Failed)
			e.job.Error = err.Error()
			e.job.Files, e.job.Result = nil, nil
		}
		q.mu.Unlock()
		if succeeded {
			os.RemoveAll(filepath.Join(q.jobDir(id), filesDir))
			if err := q.persist(e); err != nil {
				q.log.Error("jobs: store the final state", "job", id, "err", err)
			}
		}
	}
	j := q.snapshot(e)
	if err := q.emitState(e, j.State, j.Error, true); err != nil {
		q.log.Error("jobs: append the final event", "job", id, "err", err)
	}
	if err := syncFile(e.events.path); err != nil {
		q.log.Warn("jobs: sync the events", "job", id, "err", err)
	}
	if q.opts.OnFinish != nil {
		q.opts.OnFinish(j) // before Wait returns, so that metrics already count the job
	}
	close(e.done)
}

// snapshot copies e's job under the lock.
func (q *Queue) snapshot(e *entry) Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	return e.job.clone()
}

// persist writes e's current state to job.json. Each write takes its snapshot under
// e.write, so writes land in the order of the states they hold.
func (q *Queue) persist(e *entry) error {
	e.write.Lock()
	defer e.write.Unlock()
	return writeJob(q.jobDir(e.job.ID), q.snapshot(e))
}

// emitState emits a "state" event.
func (q *Queue) emitState(e *entry, s State, msg string, final bool) error {
	data, _ := json.Marshal(stateData{State: s, Error: msg})
	return e.events.emit("state", data, final)
}

// reporter is the Reporter a job's Work gets.
type reporter struct {
	q *Queue
	e *entry
}

// progressWriteEvery is how often at most a running job's progress is written to
// job.json; Get always answers from memory.
const progressWriteEvery = time.Second

func (r reporter) Progress(p Progress) {
	if p.Object != nil {
		o := *p.Object
		p.Object = &o // the Work may reuse its variable
	}
	q, e := r.q, r.e
	e.report.Lock()
	defer e.report.Unlock()
	now := time.Now()
	q.mu.Lock()
	if e.job.State != Running {
		q.mu.Unlock()
		return
	}
	prev := e.job.Progress
	stage := p.Stage != prev.Stage || !sameInt(p.Object, prev.Object)
	step := -1.0
	if !e.lastStep.IsZero() && p.Step > prev.Step {
		step = now.Sub(e.lastStep).Seconds()
	}
	e.lastStep = now
	e.job.Progress = p
	write := now.Sub(e.written) >= progressWriteEvery
	if write {
		e.written = now
	}
	kind := e.job.Kind
	q.mu.Unlock()

	if stage {
		data, _ := json.Marshal(stageData{Stage: p.Stage, Object: p.Object, Objects: p.Objects})
		q.emitLogged(e, "stage", data)
	}
	data, _ := json.Marshal(p)
	q.emitLogged(e, "step", data)
	if step >= 0 && q.opts.OnStep != nil {
		q.opts.OnStep(kind, step)
	}
	if write {
		if err := q.persist(e); err != nil {
			q.log.Warn("jobs: store progress", "job", e.job.ID, "err", err)
		}
	}
}

func (r reporter) Event(typ string, data any) {
	r.e.report.Lock()
	defer r.e.report.Unlock()
	if !r.running() {
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		r.q.log.Error("jobs: encode an event: dropped", "job", r.e.job.ID, "type", typ, "err", err)
		return
	}
	r.q.emitLogged(r.e, typ, raw)
}

func (r reporter) Timing(name string, seconds float64) {
	r.e.report.Lock()
	defer r.e.report.Unlock()
	r.q.mu.Lock()
	if r.e.job.State != Running {
		r.q.mu.Unlock()
		return
	}
	r.e.job.Seconds[name] = seconds
	r.q.mu.Unlock()
	data, _ := json.Marshal(timingData{Name: name, Seconds: seconds})
	r.q.emitLogged(r.e, "timing", data)
}

func (r reporter) running() bool {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	return r.e.job.State == Running
}

// emitLogged emits an event of a running job, logging a failed append: the event still
// reaches the subscribers, and a lost line only shortens a later replay.
func (q *Queue) emitLogged(e *entry, typ string, data json.RawMessage) {
	if err := e.events.emit(typ, data, false); err != nil {
		q.log.Warn("jobs: append an event", "job", e.job.ID, "type", typ, "err", err)
	}
}

func sameInt(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
