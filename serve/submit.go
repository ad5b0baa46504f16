package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rfnet/rfnet-native/serve/jobs"
)

// Retry-After of a full queue and of a server shutting down, in seconds.
const (
	retryFull     = 5
	retryDraining = 30
)

// submit queues a job; a full queue is a 429, a server shutting down a 503.
func (s *Server) submit(kind string, req any, timeout time.Duration, work jobs.Work) (jobs.Job, error) {
	if s.draining.Load() {
		return jobs.Job{}, shuttingDown()
	}
	j, err := s.queue.Submit(kind, req, timeout, work)
	switch {
	case errors.Is(err, jobs.ErrFull):
		e := newError(http.StatusTooManyRequests, "", "the queue is full (%d jobs waiting): retry later", s.o.Queue)
		e.RetryAfter = retryFull
		return j, e
	case errors.Is(err, jobs.ErrClosed):
		return j, shuttingDown()
	}
	return j, err
}

func shuttingDown() *apiError {
	e := newError(http.StatusServiceUnavailable, "", "the server is shutting down: retry later")
	e.RetryAfter = retryDraining
	return e
}

// jobTimeout is --job-timeout, or a request's timeout_seconds when shorter.
func (s *Server) jobTimeout(seconds *float64) (time.Duration, error) {
	limit := s.o.Limits.JobTimeout
	if seconds == nil {
		return limit, nil
	}
	d := time.Duration(*seconds * float64(time.Second))
	if !(*seconds > 0) || d > limit {
		return 0, badField("timeout_seconds", "timeout_seconds %v: want more than 0, at most %g (--job-timeout)", *seconds, limit.Seconds())
	}
	return d, nil
}

// runSync submits a job and waits for it, for the synchronous APIs: the job
// is canceled when the client goes away. A failed job is a 500 with its
// error, one past its deadline a 504, one canceled by a shutdown a 503.
func (s *Server) runSync(r *http.Request, kind string, req any, work jobs.Work) (jobs.Job, error) {
	job, err := s.submit(kind, req, s.o.Limits.JobTimeout, work)
	if err != nil {
		return job, err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	id := job.ID
	job, err = s.queue.Wait(ctx, id)
	if err != nil {
		if r.Context().Err() != nil {
			// The client went away: its job goes too.
			s.queue.Cancel(id)
			return job, fmt.Errorf("serve: the client went away: %w", r.Context().Err())
		}
		return job, shuttingDown()
	}
	switch job.State {
	case jobs.Succeeded:
		return job, nil
	case jobs.Failed:
		if strings.HasPrefix(job.Error, "deadline exceeded") {
			return job, newError(http.StatusGatewayTimeout, "", "job %s: %s", job.ID, job.Error)
		}
		return job, newError(http.StatusInternalServerError, "", "job %s: %s", job.ID, job.Error)
	}
	if s.draining.Load() {
		e := shuttingDown()
		e.Message = fmt.Sprintf("job %s: %s", job.ID, job.Error)
		return job, e
	}
	return job, newError(http.StatusInternalServerError, "", "job %s: %s", job.ID, job.Error)
}
