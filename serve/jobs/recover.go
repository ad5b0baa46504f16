package jobs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// recover loads the store and settles what the previous queue left (see the package
// doc). It runs before the workers start, so requeued jobs keep their order.
func (q *Queue) recover() error {
	root := filepath.Join(q.dir, "jobs")
	dirs, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("jobs: store: %w", err)
	}
	var loaded []*entry
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(root, d.Name())
		removeTemps(dir)
		j, err := readJob(dir)
		if err != nil {
			q.log.Warn("jobs: skipped a job folder whose job.json cannot be read", "dir", dir, "err", err)
			continue
		}
		loaded = append(loaded, q.newEntry(j))
	}
	slices.SortFunc(loaded, func(a, b *entry) int {
		if c := a.job.Created.Compare(b.job.Created); c != 0 {
			return c
		}
		return strings.Compare(a.job.ID, b.job.ID)
	})

	q.mu.Lock()
	for _, e := range loaded {
		q.index(e)
	}
	q.mu.Unlock()
	for _, e := range loaded {
		switch e.job.State {
		case Running:
			q.interrupted(e)
		case Queued:
			q.requeue(e)
		default:
			e.events.closed = true
			close(e.done)
		}
	}
	return nil
}

// reopen prepares a job's store for more: the events file loses a torn last line and
// the numbering goes on after its last event; leftover files are removed.
func (q *Queue) reopen(e *entry) {
	seq, err := repairEvents(e.events.path)
	if err != nil {
		q.log.Warn("jobs: repair the events", "job", e.job.ID, "err", err)
	}
	e.events.seq = seq
	if err := os.RemoveAll(filepath.Join(q.jobDir(e.job.ID), filesDir)); err != nil {
		q.log.Warn("jobs: remove partial files", "job", e.job.ID, "err", err)
	}
}

// interrupted fails a job that was running when the previous queue stopped.
func (q *Queue) interrupted(e *entry) {
	q.reopen(e)
	q.mu.Lock()
	q.setFinal(e, Failed, errInterrupted)
	q.mu.Unlock()
	q.log.Info("jobs: marked failed a job that was running when the server stopped", "job", e.job.ID)
	q.settle(e)
}

// requeue queues again a job that was queued when the previous queue stopped, unless
// its deadline has passed or its Work cannot be rebuilt.
func (q *Queue) requeue(e *entry) {
	q.reopen(e)
	var fail string
	switch {
	case e.job.Deadline != nil && !time.Now().Before(*e.job.Deadline):
		fail = deadlineError(e.job) + " while queued"
	case q.opts.Rebuild == nil:
		fail = "interrupted: the server restarted and cannot queue this job again"
	default:
		work, err := q.opts.Rebuild(e.job.Kind, e.job.Request)
		switch {
		case err != nil:
			fail = "requeue after a restart: " + err.Error()
		case work == nil:
			fail = "requeue after a restart: no work for kind " + e.job.Kind
		default:
			q.mu.Lock()
			e.work = work
			q.enqueue(e)
			q.mu.Unlock()
			return
		}
	}
	q.finish(e, Failed, fail)
}
