package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
)

// State is where a job is in its life: queued, then running, then one of the three
// final states.
type State string

// The states of a job. A job moves queued → running → succeeded/failed/canceled, or
// from queued straight to a final state (canceled, or failed when its deadline passes).
const (
	Queued    State = "queued"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Canceled  State = "canceled"
)

// States lists every state, in the order of a job's life (for metrics).
var States = []State{Queued, Running, Succeeded, Failed, Canceled}

// Done reports whether s is final: succeeded, failed or canceled.
func (s State) Done() bool { return s == Succeeded || s == Failed || s == Canceled }

func (s State) valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Progress is what a running job last reported. Fraction runs from 0 to 1 over the
// whole job (all images, all objects); the queue sets it to 1 when the job succeeds.
type Progress struct {
	Stage    string  `json:"stage,omitempty"`
	Object   *int    `json:"object,omitempty"`
	Objects  int     `json:"objects,omitempty"`
	Image    int     `json:"image,omitempty"` // 0-based image of a multi-image job
	Images   int     `json:"images,omitempty"`
	Step     int     `json:"step"`
	Steps    int     `json:"steps"`
	Fraction float64 `json:"fraction"`
}

// Job is one job as the API shows it and as job.json stores it.
type Job struct {
	ID       string             `json:"id"`
	Kind     string             `json:"kind"`
	State    State              `json:"state"`
	Created  time.Time          `json:"created"`
	Started  *time.Time         `json:"started,omitempty"`
	Finished *time.Time         `json:"finished,omitempty"`
	Deadline *time.Time         `json:"deadline,omitempty"`
	Progress Progress           `json:"progress"`
	Error    string             `json:"error,omitempty"`
	Files    []string           `json:"files,omitempty"`   // sorted, slash-separated, relative to the Work's folder (jobs/<id>/files)
	Seconds  map[string]float64 `json:"seconds,omitempty"` // "queued", "run" and the Work's own Timing calls
	Request  json.RawMessage    `json:"request"`
	Result   json.RawMessage    `json:"result,omitempty"`
}

// clone copies the parts of j that the queue changes in place, so that a caller may
// keep the copy while the job goes on.
func (j Job) clone() Job {
	if j.Seconds != nil {
		s := make(map[string]float64, len(j.Seconds))
		for k, v := range j.Seconds {
			s[k] = v
		}
		j.Seconds = s
	}
	return j
}

// Event is one line of a job's events.jsonl and one server-sent event.
type Event struct {
	Seq  int             `json:"seq"`
	Type string          `json:"type"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// Reporter is how a Work tells the queue what it does. Every call is an event (kept in
// the job's events file, sent to subscribers); Progress also updates Job.Progress and
// emits a "stage" event first when Stage or Object changed. Calls after the Work has
// returned are ignored.
type Reporter interface {
	// Progress is a "step" event carrying p.
	Progress(p Progress)
	// Event is an event of any other type ("loss", "preview", ...); data is JSON-encoded.
	Event(typ string, data any)
	// Timing records a duration into Job.Seconds and as a "timing" event.
	Timing(name string, seconds float64)
}

// Work runs a job: it writes its files under dir (an empty folder the queue made),
// reports through r, returns soon after ctx ends with an error wrapping ctx.Err(), and
// returns a summary that is JSON-encoded into Job.Result. The files under dir when Work
// returns nil become Job.Files (sorted, slash-separated; regular files only); if Work
// fails, the folder is removed. A Work that returns nil has finished, even when it was
// asked to stop: its result is kept.
type Work func(ctx context.Context, dir string, r Reporter) (result any, err error)

// Rebuild turns a stored queued job back into its Work after a restart.
type Rebuild func(kind string, request json.RawMessage) (Work, error)

// Options configure a Queue.
type Options struct {
	Length   int                                // jobs waiting at most (running ones not counted); Submit returns ErrFull beyond
	Workers  int                                // jobs running at once (>= 1)
	Rebuild  Rebuild                            // nil: queued jobs found at Open are marked failed
	OnFinish func(Job)                          // called once per job reaching a final state (metrics), may be nil
	OnStep   func(kind string, seconds float64) // time between consecutive Progress calls of a running job with increasing Step (metrics), may be nil
	Log      *slog.Logger                       // may be nil
}

// Stats counts jobs: Queued and Running as now, ByState over every job the queue knows.
type Stats struct {
	Queued, Running int
	ByState         map[State]int
}

// Errors that callers branch on (with errors.Is).
var (
	ErrFull     = errors.New("jobs: the queue is full")
	ErrNotFound = errors.New("jobs: not found")
	ErrClosed   = errors.New("jobs: the queue is shutting down")
)

// Errors a job ends with when the queue, not the Work, decides its fate.
const (
	errCanceled    = "canceled"
	errShutdown    = "canceled: the server shut down"
	errInterrupted = "interrupted: the server stopped while this job ran"
)
