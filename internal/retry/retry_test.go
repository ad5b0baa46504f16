package retry

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

var (
	errTransient = errors.New("HTTP 503")
	errFatal     = errors.New("HTTP 401")
)

// recorder is a policy that retries errTransient only and records the waits
// it is told of.
type recorder struct{ waits []time.Duration }

func (r *recorder) policy(retries int, backoff time.Duration) Policy {
	return Policy{Retries: retries, Backoff: backoff,
		Retryable: func(err error) bool { return errors.Is(err, errTransient) },
		OnRetry:   func(_ error, wait time.Duration) { r.waits = append(r.waits, wait) }}
}

// script returns a try that fails with errs in turn, then succeeds, and the
// count of calls.
func script(errs ...error) (func() error, *int) {
	calls := 0
	return func() error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	}, &calls
}

func TestDo(t *testing.T) {
	for _, c := range []struct {
		name      string
		retries   int
		errs      []error
		wantCalls int
		wantWaits []time.Duration
		want      func(error) bool
	}{
		{"first try succeeds", 3, nil, 1, nil, func(err error) bool { return err == nil }},
		{"succeeds on the last retry", 2, []error{errTransient, errTransient}, 3, []time.Duration{time.Millisecond, 2 * time.Millisecond},
			func(err error) bool { return err == nil }},
		{"not retryable stops at once, unchanged", 3, []error{errTransient, errFatal}, 2, []time.Duration{time.Millisecond},
			func(err error) bool { return err == errFatal }},
		{"no retries is one try", 0, []error{errTransient}, 1, nil, func(err error) bool {
			var ex *ExhaustedError
			return errors.As(err, &ex) && ex.Tries == 1
		}},
		{"negative retries is one try", -2, []error{errTransient}, 1, nil, func(err error) bool {
			var ex *ExhaustedError
			return errors.As(err, &ex) && ex.Tries == 1
		}},
		{"retries run out", 2, []error{errTransient, errTransient, errTransient, errTransient}, 3,
			[]time.Duration{time.Millisecond, 2 * time.Millisecond}, func(err error) bool {
				var ex *ExhaustedError
				return errors.As(err, &ex) && ex.Tries == 3 && ex.Last == errTransient && errors.Is(err, errTransient) &&
					err.Error() == "giving up after 3 tries: HTTP 503"
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r recorder
			try, calls := script(c.errs...)
			err := Do(context.Background(), r.policy(c.retries, time.Millisecond), try)
			if !c.want(err) || *calls != c.wantCalls || !slices.Equal(r.waits, c.wantWaits) {
				t.Fatalf("error %v after %d calls with waits %v; want %d calls, waits %v", err, *calls, r.waits, c.wantCalls, c.wantWaits)
			}
		})
	}
}

// A context canceled during a wait ends Do at once with its error, without
// the wait's remaining hour or another try.
func TestDoCanceledDuringBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var r recorder
	p := r.policy(5, time.Hour)
	p.OnRetry = func(error, time.Duration) { cancel() }
	try, calls := script(errTransient, errTransient)
	done := make(chan error, 1)
	go func() { done <- Do(ctx, p, try) }()
	select {
	case err := <-done:
		if err != context.Canceled || *calls != 1 {
			t.Fatalf("error %v after %d calls, want context.Canceled after 1", err, *calls)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do sat out its backoff after the context was canceled")
	}
}

// A try that comes back after the context ended is not repeated: its own
// error is returned, though retryable.
func TestDoContextDoneDuringTry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var r recorder
	calls := 0
	err := Do(ctx, r.policy(5, time.Millisecond), func() error {
		calls++
		cancel()
		return errTransient
	})
	if err != errTransient || calls != 1 || len(r.waits) != 0 {
		t.Fatalf("error %v after %d calls, %d waits; want the try's error after 1 call, no wait", err, calls, len(r.waits))
	}
}
