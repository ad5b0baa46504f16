package serve

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strconv"

	"github.com/rfnet/rfnet-native/serve/jobs"
)

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	list := s.queue.List()
	if list == nil {
		list = []jobs.Job{}
	}
	writeJSON(w, http.StatusOK, map[string][]jobs.Job{"jobs": list})
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.queue.Get(r.PathValue("id"))
	if err != nil {
		return jobError(r.PathValue("id"), err)
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

// deleteJob cancels a job: a queued one at once, a running one at its next
// step; a finished one is left as it is.
func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.queue.Cancel(r.PathValue("id"))
	if err != nil {
		return jobError(r.PathValue("id"), err)
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

// jobFile serves a finished job's file, its Content-Type from the extension.
func (s *Server) jobFile(w http.ResponseWriter, r *http.Request) error {
	id, name := r.PathValue("id"), r.PathValue("name")
	p, err := s.queue.File(id, name)
	if err != nil {
		if errors.Is(err, jobs.ErrNotFound) {
			return newError(http.StatusNotFound, "", "job %s has no file %q (a job's files appear when it succeeds)", id, name)
		}
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("serve: job %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("serve: job %s: %w", id, err)
	}
	if path.Ext(name) == ".jsonl" { // not in the mime tables
		w.Header().Set("Content-Type", "application/jsonl")
	}
	http.ServeContent(w, r, path.Base(name), fi.ModTime(), f)
	return nil
}

// jobError is a 404 for an unknown job, else err.
func jobError(id string, err error) error {
	if errors.Is(err, jobs.ErrNotFound) {
		return newError(http.StatusNotFound, "", "no job %q", id)
	}
	return err
}

// resultOf reads a succeeded job's summary.
func resultOf(j jobs.Job) (result, error) {
	var res result
	if err := json.Unmarshal(j.Result, &res); err != nil {
		return res, fmt.Errorf("serve: job %s: its result: %w", j.ID, err)
	}
	return res, nil
}

func base64Of(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// healthz answers 200 with the model and the queue once serving, 503 once
// shutting down.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return nil
	}
	st := s.queue.Stats()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model": s.o.Model.Path, "device": s.o.Model.Backend.Name(),
		"queued": st.Queued, "running": st.Running})
	return nil
}

// lastEventID is the Last-Event-ID header's sequence number (0 without one).
func lastEventID(r *http.Request) (int, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badField("Last-Event-ID", "Last-Event-ID %q: want an event's id (0 or more)", v)
	}
	return n, nil
}
