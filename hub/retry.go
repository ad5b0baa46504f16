package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rfnet/rfnet-native/internal/retry"
)

// permanentError marks a failure that another try cannot fix (401, 404, a
// full disk): retry returns it at once, unwrapped.
type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

func permanent(err error) error { return permanentError{err} }

// unreachableError is what retry returns when every try failed in a way that
// may pass (a network error, a timeout, 429, 5xx, a cut answer): for Resolve,
// the Hub cannot be reached.
type unreachableError struct {
	what  string
	tries int
	last  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("hub: %s: giving up after %d tries: %v", e.what, e.tries, e.last)
}

func (e *unreachableError) Unwrap() error { return e.last }

// retry runs f until it succeeds, fails permanently, or the retries run out
// (an unreachableError), waiting Backoff, then twice as long, ...
func (c *Client) retry(ctx context.Context, what string, retries int, f func() error) error {
	err := retry.Do(ctx, retry.Policy{
		Retries:   retries,
		Backoff:   c.Backoff,
		Retryable: func(err error) bool { return !errors.As(err, new(permanentError)) },
		OnRetry:   func(err error, wait time.Duration) { c.logf("%s: %v; retrying in %s", what, err, wait) },
	}, f)
	var exhausted *retry.ExhaustedError
	var p permanentError
	switch {
	case errors.As(err, &exhausted):
		return &unreachableError{what, exhausted.Tries, exhausted.Last}
	case errors.As(err, &p):
		return p.error
	}
	return err
}
