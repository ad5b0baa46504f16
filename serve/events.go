package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rfnet/rfnet-native/serve/jobs"
)

// jobEvents streams a job's events as server-sent events: the past ones
// after Last-Event-ID, then, for a live job, the later ones until its final
// state event. A comment line keeps idle connections open.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	after, err := lastEventID(r)
	if err != nil {
		return err
	}
	past, live, stop, err := s.queue.Events(id, after)
	if err != nil {
		return jobError(id, err)
	}
	defer func() { stop() }()
	rc := http.NewResponseController(w)
	// A stream lasts as long as its job: no write deadline (a WriteTimeout
	// of the http.Server) may end it.
	rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies such as nginx pass each event on at once
	w.WriteHeader(http.StatusOK)
	last := after
	final := false
	send := func(e jobs.Event) error {
		last = e.Seq
		final = final || isFinal(e)
		return writeEvent(w, e)
	}
	for _, e := range past {
		if err := send(e); err != nil {
			return nil // the client went away
		}
	}
	rc.Flush()
	keepAlive := time.NewTicker(s.o.KeepAlive)
	defer keepAlive.Stop()
	for live != nil && !final {
		select {
		case e, ok := <-live:
			if !ok {
				// The job ended (its final event came first), or this
				// subscriber fell behind and was dropped: follow on from the
				// last event sent.
				stop()
				if past, live, stop, err = s.queue.Events(id, last); err != nil {
					return nil
				}
				for _, e := range past {
					if send(e) != nil {
						return nil
					}
				}
				rc.Flush()
				continue
			}
			if send(e) != nil {
				return nil
			}
			rc.Flush()
		case <-keepAlive.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			rc.Flush()
		case <-r.Context().Done():
			return nil
		case <-s.done:
			return nil
		}
	}
	return nil
}

// isFinal tells the state event of a job's final state.
func isFinal(e jobs.Event) bool {
	if e.Type != "state" {
		return false
	}
	var d struct {
		State jobs.State `json:"state"`
	}
	return json.Unmarshal(e.Data, &d) == nil && d.State.Done()
}

// writeEvent writes one event: id, type and its data on one line.
func writeEvent(w io.Writer, e jobs.Event) error {
	var data bytes.Buffer
	if err := json.Compact(&data, e.Data); err != nil {
		data.Reset()
		data.WriteString("null")
	}
	_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data.Bytes())
	return err
}
