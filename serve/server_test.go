package serve

import (
	"net/http"
	"strings"
	"testing"
)

// With a key every API needs it; /healthz and /metrics do not. Without one,
// nothing does.
func TestAuth(t *testing.T) {
	ts := newTestServer(t, Options{APIKey: "s3cret"})
	for _, c := range []struct {
		name, header string
		want         int
	}{
		{"no key", "", http.StatusUnauthorized},
		{"wrong key", "Bearer s3cre", http.StatusUnauthorized},
		{"not bearer", "Basic s3cret", http.StatusUnauthorized},
		{"the key", "Bearer s3cret", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/v1/jobs", "/sdapi/v1/samplers"} {
				req, _ := http.NewRequest("GET", ts.URL+path, nil)
				if c.header != "" {
					req.Header.Set("Authorization", c.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.want {
					t.Errorf("%s: %d, want %d", path, resp.StatusCode, c.want)
				}
				if c.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("%s: WWW-Authenticate %q", path, resp.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s without a key: %d", path, resp.StatusCode)
		}
	}
	open := newTestServer(t, Options{})
	resp, err := http.Get(open.URL + "/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("no key configured: %d", resp.StatusCode)
	}
}

// Unknown paths and wrong methods get the API's JSON errors; /healthz and
// /metrics answer.
func TestRoutesAndOperations(t *testing.T) {
	ts := newTestServer(t, Options{})
	code, body, _ := ts.do("GET", "/v1/nothing", nil)
	if e := decodeAs[errorBody](t, body); code != http.StatusNotFound || e.Error.Type != "not_found_error" {
		t.Errorf("unknown path: %d %s", code, body)
	}
	code, body, h := ts.do("GET", "/v1/images/generations", nil)
	if e := decodeAs[errorBody](t, body); code != http.StatusMethodNotAllowed || !strings.Contains(h.Get("Allow"), "POST") || e.Error.Type != "invalid_request_error" {
		t.Errorf("wrong method: %d Allow %q %s", code, h.Get("Allow"), body)
	}
	code, body, h = ts.do("GET", "/", nil)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "/static/") {
		t.Errorf("the page: %d %s", code, h.Get("Content-Type"))
	}
	code, body, _ = ts.do("GET", "/v1/jobs/0123456789abcdef", nil)
	if code != http.StatusNotFound {
		t.Errorf("unknown job: %d %s", code, body)
	}
	code, body, _ = ts.do("GET", "/healthz", nil)
	if hz := decodeAs[map[string]any](t, body); code != http.StatusOK || hz["status"] != "ok" || !strings.HasPrefix(hz["device"].(string), "cpu") {
		t.Errorf("healthz: %d %s", code, body)
	}
	// One generation, then the metrics count it.
	if code, body, _ := ts.do("POST", "/v1/images/generations", map[string]any{"prompt": "x", "size": "64x64", "steps": 2}); code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	_, body, _ = ts.do("GET", "/metrics", nil)
	for _, want := range []string{"rfnet_queue_depth 0", "rfnet_jobs_running 0", `rfnet_jobs{state="succeeded"} 1`,
		`rfnet_jobs_finished_total{kind="sd",state="succeeded"} 1`, `rfnet_job_duration_seconds_count{kind="sd"} 1`,
		`rfnet_step_duration_seconds_count{kind="sd"}`, `rfnet_http_requests_total{api="openai",code="200"} 1`, "go_goroutines", "process_open_fds"} {
		if !strings.Contains(string(body), want+"\n") && !strings.Contains(string(body), want+" ") {
			t.Errorf("metrics lack %q", want)
		}
	}
}
