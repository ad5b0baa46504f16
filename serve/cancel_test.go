package serve

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/serve/jobs"
)

// longJob is an RFNet job of the offline planner's objects that runs for
// seconds unless stopped: tests cancel it or shut the server down under it.
var longJob = map[string]any{"prompt": "a cat and a dog", "steps": 150, "width": 128, "height": 128}

// shortJob finishes in a fraction of a second.
var shortJob = map[string]any{"prompt": "a cat", "steps": 2, "width": 64, "height": 64}

func (ts *testServer) submitJob(req map[string]any) string {
	ts.t.Helper()
	code, body, _ := ts.do("POST", "/v1/rfnet/jobs", req)
	if code != http.StatusAccepted {
		ts.t.Fatalf("submit: %d %s", code, body)
	}
	return decodeAs[struct{ ID string }](ts.t, body).ID
}

func running(j map[string]any) bool { return j["state"] == "running" && stepsDone(j) >= 1 }

func state(s string) func(map[string]any) bool {
	return func(j map[string]any) bool { return j["state"] == s }
}

// DELETE cancels a queued job at once and a running one at its next step;
// neither leaves files.
func TestCancelJobs(t *testing.T) {
	ts := newTestServer(t, Options{})
	long := ts.submitJob(longJob)
	queued := ts.submitJob(shortJob)
	ts.waitJob(long, running)
	code, body, _ := ts.do("DELETE", "/v1/jobs/"+queued, nil)
	if j := decodeAs[map[string]any](t, body); code != http.StatusOK || j["state"] != "canceled" {
		t.Fatalf("cancel queued: %d %s", code, body)
	}
	if code, _, _ := ts.do("DELETE", "/v1/jobs/"+long, nil); code != http.StatusOK {
		t.Fatalf("cancel running: %d", code)
	}
	j := ts.waitJob(long, func(j map[string]any) bool { return j["state"] != "running" })
	if j["state"] != "canceled" || j["files"] != nil || stepsDone(j) >= 150 {
		t.Fatalf("canceled running job: %v", j)
	}
	if code, _, _ := ts.do("GET", "/v1/jobs/"+long+"/files/image.png", nil); code != http.StatusNotFound {
		t.Errorf("a canceled job's image: %d", code)
	}
	// Cancel of a finished job leaves it as it is.
	if code, body, _ := ts.do("DELETE", "/v1/jobs/"+long, nil); code != http.StatusOK || !strings.Contains(string(body), `"canceled"`) {
		t.Errorf("cancel again: %d %s", code, body)
	}
	if code, _, _ := ts.do("DELETE", "/v1/jobs/0123456789abcdef", nil); code != http.StatusNotFound {
		t.Errorf("cancel of no job: %d", code)
	}
}

// A synchronous client that goes away takes its job with it.
func TestClientGoneCancels(t *testing.T) {
	ts := newTestServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/images/generations",
			strings.NewReader(`{"prompt": "x", "size": "128x128", "steps": 150}`))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	var id string
	for deadline := time.Now().Add(30 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, j := range ts.queue.List() {
			if j.State == jobs.Running && j.Progress.Step >= 1 {
				id = j.ID
			}
		}
	}
	if id == "" {
		t.Fatal("the job did not start")
	}
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("the request finished although its client left")
	}
	j := ts.waitJob(id, func(j map[string]any) bool { return j["state"] != "running" })
	if j["state"] != "canceled" {
		t.Errorf("job of a client gone: %v", j)
	}
}

// Shutdown lets a running job finish within the grace.
func TestShutdownFinishesWithinGrace(t *testing.T) {
	ts := newTestServer(t, Options{})
	id := ts.submitJob(map[string]any{"prompt": "a cat", "steps": 6, "width": 128, "height": 128})
	ts.waitJob(id, func(j map[string]any) bool { return j["state"] == "running" })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if j, err := ts.queue.Get(id); err != nil || j.State != jobs.Succeeded {
		t.Fatalf("after shutdown: %+v %v", j, err)
	}
}

// Past the grace the running job is canceled; the queued one stays queued
// and runs after the next start on the same data.
func TestShutdownCancelsAfterGraceAndKeepsTheQueue(t *testing.T) {
	data := t.TempDir()
	ts := newTestServer(t, Options{DataDir: data})
	long := ts.submitJob(longJob)
	queued := ts.submitJob(shortJob)
	ts.waitJob(long, running)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if j, _ := ts.queue.Get(long); j.State != jobs.Canceled || !strings.Contains(j.Error, "shut down") {
		t.Errorf("running job after the grace: %s %q", j.State, j.Error)
	}
	if j, _ := ts.queue.Get(queued); j.State != jobs.Queued {
		t.Errorf("queued job after shutdown: %s", j.State)
	}
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Errorf("healthz while shutting down: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/rfnet/jobs", strings.NewReader(`{"prompt": "x"}`)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("submit while shutting down: %d %s", rec.Code, rec.Body)
	}

	again := newTestServer(t, Options{DataDir: data})
	j := again.waitJob(queued, func(j map[string]any) bool { return j["state"] != "queued" && j["state"] != "running" })
	if j["state"] != "succeeded" {
		t.Fatalf("the requeued job: %v", j)
	}
	if j := again.waitJob(long, state("canceled")); j["error"] == nil {
		t.Errorf("the canceled job after a restart: %v", j)
	}
}

// A full queue answers 429 with Retry-After; A1111's progress follows the
// running job with a preview, and its interrupt cancels A1111's jobs.
func TestQueueFullProgressAndInterrupt(t *testing.T) {
	ts := newTestServer(t, Options{Queue: 1})
	long := ts.submitJob(longJob)
	queued := ts.submitJob(shortJob)
	ts.waitJob(long, running)
	code, body, h := ts.do("POST", "/v1/rfnet/jobs", shortJob)
	if e := decodeAs[errorBody](t, body); code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || e.Error.Type != "rate_limit_error" {
		t.Errorf("full queue: %d %s Retry-After %q", code, body, h.Get("Retry-After"))
	}
	code, body, _ = ts.do("GET", "/sdapi/v1/progress", nil)
	p := decodeAs[struct {
		Progress float64 `json:"progress"`
		State    struct {
			Job          string `json:"job"`
			JobCount     int    `json:"job_count"`
			SamplingStep int    `json:"sampling_step"`
		} `json:"state"`
		CurrentImage *string `json:"current_image"`
	}](t, body)
	if code != http.StatusOK || p.State.Job != long || p.State.JobCount != 2 || p.State.SamplingStep < 1 || p.Progress <= 0 || p.CurrentImage == nil {
		t.Errorf("progress: %d %s", code, body)
	}
	ts.do("DELETE", "/v1/jobs/"+queued, nil)
	// The running RFNet job is not A1111's: interrupt leaves it.
	if code, _, _ := ts.do("POST", "/sdapi/v1/interrupt", "{}"); code != http.StatusOK {
		t.Errorf("interrupt: %d", code)
	}
	if j, _ := ts.queue.Get(long); j.State != jobs.Running {
		t.Errorf("interrupt stopped an RFNet job: %s", j.State)
	}
	ts.do("DELETE", "/v1/jobs/"+long, nil)
	ts.waitJob(long, state("canceled"))

	done := make(chan int, 1)
	go func() {
		code, _, _ := ts.do("POST", "/sdapi/v1/txt2img", map[string]any{"prompt": "x", "width": 128, "height": 128, "steps": 150})
		done <- code
	}()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st := ts.queue.Stats(); st.Running == 1 {
			break
		}
	}
	ts.do("POST", "/sdapi/v1/interrupt", "{}")
	if code := <-done; code != http.StatusInternalServerError {
		t.Errorf("an interrupted txt2img: %d", code)
	}
}

// A synchronous generation outlives the server's ReadTimeout, which bounds
// the reading of the request only.
func TestLongRequestOutlivesReadTimeout(t *testing.T) {
	ts := newTunedTestServer(t, Options{}, func(h *http.Server) { h.ReadTimeout = 50 * time.Millisecond })
	code, body, _ := ts.do("POST", "/v1/images/generations", map[string]any{"prompt": "x", "size": "128x128", "steps": 10})
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
}

// A stream that waits sends keep-alive comments.
func TestEventsKeepAlive(t *testing.T) {
	ts := newTestServer(t, Options{KeepAlive: 10 * time.Millisecond})
	long := ts.submitJob(longJob)
	queued := ts.submitJob(shortJob)
	resp, err := http.Get(ts.URL + "/v1/jobs/" + queued + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != ": keep-alive" {
	}
	if sc.Text() != ": keep-alive" {
		t.Fatalf("the stream ended without a keep-alive: %v", sc.Err())
	}
	ts.do("DELETE", "/v1/jobs/"+queued, nil)
	ts.do("DELETE", "/v1/jobs/"+long, nil)
	// The stream ends with the canceled job's final event.
	last := ""
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			last = sc.Text()
		}
	}
	if !strings.Contains(last, `"canceled"`) {
		t.Errorf("last event %q", last)
	}
}
