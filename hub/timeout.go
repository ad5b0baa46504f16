package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// The defaults of huggingface_hub's HF_HUB_ETAG_TIMEOUT and
// HF_HUB_DOWNLOAD_TIMEOUT (huggingface_hub/constants.py).
const (
	DefaultEtagTimeout     = 10 * time.Second
	DefaultDownloadTimeout = 10 * time.Second
)

// envSeconds reads a timeout written as huggingface_hub's variables are: a
// number of seconds. Unset or empty is def.
func envSeconds(name string, def time.Duration) (time.Duration, error) {
	s := os.Getenv(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	// !(v > 0) also refuses NaN; the bound keeps the Duration from overflowing.
	if err != nil || !(v > 0) || v*float64(time.Second) > math.MaxInt64 {
		return 0, fmt.Errorf("hub: %s=%q: want a positive number of seconds (such as 10 or 2.5)", name, s)
	}
	return time.Duration(v * float64(time.Second)), nil
}

// A timeout is how long a request may go without receiving anything, and
// which of the client's timeouts it is (for the message when it runs out).
type timeout struct {
	limit      time.Duration
	field, env string // the Client field, and the variable FromEnv reads it from
}

func (c *Client) etagTimeout() timeout {
	return timeout{c.EtagTimeout, "EtagTimeout", "HF_HUB_ETAG_TIMEOUT"}
}

func (c *Client) downloadTimeout() timeout {
	return timeout{c.DownloadTimeout, "DownloadTimeout", "HF_HUB_DOWNLOAD_TIMEOUT"}
}

// TimeoutError is a request that ran out of one of the client's timeouts.
// Field names which ("EtagTimeout" or "DownloadTimeout"), so that a caller
// with its own name for the setting (a command-line flag) can add it.
type TimeoutError struct {
	Request string // "GET https://huggingface.co/api/models/...", without the query
	Limit   time.Duration
	Field   string
	Env     string // the variable FromEnv reads Field from, in seconds
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s: timed out: nothing arrived for %s (the client's %s, %s in seconds)", e.Request, e.Limit, e.Field, e.Env)
}

// An idleTimer ends a request, through its context, when nothing arrives for
// the timeout's limit. It starts before the request is sent, so it bounds
// connecting and waiting for the headers too, and restarts whenever bytes
// arrive, so it never bounds a whole multi-GB download. (huggingface_hub's
// timeouts mean the same: they are the requests library's connect and read
// timeouts.) A limit of 0 is no limit.
type idleTimer struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	limit  time.Duration
}

func startIdleTimer(ctx context.Context, method, u string, t timeout) *idleTimer {
	ctx, cancel := context.WithCancelCause(ctx)
	it := &idleTimer{ctx: ctx, cancel: cancel, limit: t.limit}
	if t.limit > 0 {
		// Signed CDN addresses carry long queries that say nothing to a user.
		u, _, _ = strings.Cut(u, "?")
		err := &TimeoutError{Request: method + " " + u, Limit: t.limit, Field: t.field, Env: t.env}
		it.timer = time.AfterFunc(t.limit, func() { cancel(err) })
	}
	return it
}

// progress restarts the timer: bytes arrived.
func (it *idleTimer) progress() {
	if it.timer != nil {
		it.timer.Reset(it.limit)
	}
}

func (it *idleTimer) stop() {
	if it.timer != nil {
		it.timer.Stop()
	}
	it.cancel(nil)
}

// explain replaces err by the timeout when the timer ended the request (the
// transport reports only that its context was canceled).
func (it *idleTimer) explain(err error) error {
	var t *TimeoutError
	if err != nil && errors.As(context.Cause(it.ctx), &t) {
		return t
	}
	return err
}

// idleBody is a response body under its request's idle timer.
type idleBody struct {
	io.ReadCloser
	timer *idleTimer
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.progress()
	}
	if err != nil && err != io.EOF {
		err = b.timer.explain(err)
	}
	return n, err
}

func (b *idleBody) Close() error {
	err := b.ReadCloser.Close()
	b.timer.stop()
	return err
}
