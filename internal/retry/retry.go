// Package retry repeats a request that failed in a way that may pass (a
// timeout, a rate limit, a server error), waiting longer after each failure.
// It is the one backoff loop of the Hub client and the LLM client: each says
// which of its errors are worth another try and how a retry is logged, and
// turns the outcome into its own errors.
package retry

import (
	"context"
	"fmt"
	"time"
)

// Policy says how often and how patiently a request is repeated. Both of its
// functions must be set: each caller has its own retryable errors and log.
type Policy struct {
	// Retries is how many times a failed try is repeated (0: one try only).
	Retries int
	// Backoff is the wait before the first retry; each later wait is twice
	// the one before it.
	Backoff time.Duration
	// Retryable reports whether a try's error may pass with another try.
	Retryable func(err error) bool
	// OnRetry is told of each failure that will be retried and of the wait
	// before the next try (the caller's log line).
	OnRetry func(err error, wait time.Duration)
}

// ExhaustedError is what Do returns when every try failed with a retryable
// error.
type ExhaustedError struct {
	Tries int   // how many tries were made: Retries + 1
	Last  error // the last try's error
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("giving up after %d tries: %v", e.Tries, e.Last)
}

func (e *ExhaustedError) Unwrap() error { return e.Last }

// Do calls try until it succeeds or the policy stops it. It returns nil on
// success; try's own error, unchanged, when that error is not retryable or
// ctx was done by the time it came back (a try cut short by the caller is no
// failure to repeat); an *ExhaustedError when the retries ran out; and
// ctx.Err() when ctx ended during a wait, which it does not sit out.
func Do(ctx context.Context, p Policy, try func() error) error {
	wait := p.Backoff
	for n := 0; ; n++ {
		err := try()
		if err == nil || !p.Retryable(err) || ctx.Err() != nil {
			return err
		}
		if n >= p.Retries {
			return &ExhaustedError{Tries: n + 1, Last: err}
		}
		p.OnRetry(err, wait)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		wait *= 2
	}
}
