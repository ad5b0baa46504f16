package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/serve/jobs"
)

// loadWait bounds every wait of the load and fault tests.
const loadWait = 60 * time.Second

// answer is one HTTP exchange as the load and fault tests see it.
type answer struct {
	code   int
	body   []byte
	header http.Header
}

// send posts body (a string: sent as it is; else JSON-encoded) and returns the answer.
// It is safe to call from many goroutines and does not touch t.
func send(ctx context.Context, c *http.Client, method, url string, body any) (answer, error) {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return answer{}, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(raw))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, out, resp.Header}, err
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count open files: %v", err)
	}
	return len(fds)
}

// heapAfterGC is the live heap.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// settle waits until count() is at most want: goroutines and descriptors that were let
// go take a moment to be gone. It returns the last count.
func settle(count func() int, want int) int {
	deadline := time.Now().Add(10 * time.Second)
	n := count()
	for n > want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = count()
	}
	return n
}

// loadRequest is one request of the load test and what may come back.
type loadRequest struct {
	name   string
	method string
	path   string
	body   any
	ok     int    // the status of an accepted request
	param  string // for a bad request: the field the 400 names
}

// loadMix is the load test's cycle of requests: cheap good ones of each API on the tiny
// model (64×64, 2 steps) and bad ones that validation refuses before the queue.
func loadMix(i int) loadRequest {
	seed := uint64(i)
	switch i % 8 {
	case 0:
		return loadRequest{name: "openai", path: "/v1/images/generations", ok: http.StatusOK,
			body: map[string]any{"prompt": "a red apple", "size": "64x64", "steps": 2, "seed": seed}}
	case 1:
		return loadRequest{name: "a1111", path: "/sdapi/v1/txt2img", ok: http.StatusOK,
			body: map[string]any{"prompt": "a cat", "width": 64, "height": 64, "steps": 2, "seed": seed}}
	case 2:
		return loadRequest{name: "rfnet", path: "/v1/rfnet/jobs", ok: http.StatusAccepted,
			body: map[string]any{"prompt": "a mouse hunting a lion", "width": 64, "height": 64, "steps": 2, "seed": seed}}
	case 3:
		return loadRequest{name: "bad size", path: "/v1/images/generations", param: "size",
			body: map[string]any{"prompt": "a red apple", "size": "100x100"}}
	case 4:
		return loadRequest{name: "bad steps", path: "/v1/images/generations", param: "steps",
			body: map[string]any{"prompt": "a red apple", "steps": 100000}}
	case 5:
		return loadRequest{name: "unknown field", path: "/sdapi/v1/txt2img", param: "colour",
			body: map[string]any{"prompt": "a cat", "colour": "red"}}
	case 6:
		return loadRequest{name: "not json", path: "/v1/rfnet/jobs", param: "body", body: `{"prompt": `}
	default:
		return loadRequest{name: "bad width", path: "/sdapi/v1/txt2img", param: "width",
			body: map[string]any{"prompt": "a cat", "width": 65, "height": 64}}
	}
}

// 200 requests at once against a queue of 4: each is accepted (and its job finishes
// exactly once), refused as the queue is full (429 with Retry-After) or refused as bad
// (400 naming the field); afterwards no goroutine, descriptor or memory is left.
func TestLoadMixedRequests(t *testing.T) {
	tinyModel(t, "tiny-sd2") // loaded once per binary: not a leak of this test
	goroutines, fds, heap := runtime.NumGoroutine(), openFDs(t), heapAfterGC()

	ts := newTestServer(t, Options{Queue: 4, Workers: 1})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: loadWait}
	const n = 200
	answers := make([]answer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := loadMix(i)
			answers[i], errs[i] = send(context.Background(), client, "POST", ts.URL+r.path, r.body)
		})
	}
	wg.Wait()

	count := map[int]int{}
	var async []string
	for i, a := range answers {
		r := loadMix(i)
		if errs[i] != nil {
			t.Fatalf("request %d (%s): %v", i, r.name, errs[i])
		}
		count[a.code]++
		switch {
		case r.param != "":
			e := decodeAs[errorBody](t, a.body)
			if a.code != http.StatusBadRequest || e.Error.Param != r.param {
				t.Fatalf("request %d (%s): %d param %q (%s), want 400 naming %q", i, r.name, a.code, e.Error.Param, a.body, r.param)
			}
		case a.code == http.StatusTooManyRequests:
			if a.header.Get("Retry-After") == "" || decodeAs[errorBody](t, a.body).Error.Type != "rate_limit_error" {
				t.Fatalf("request %d (%s): 429 without Retry-After or rate_limit_error: %s", i, r.name, a.body)
			}
		case a.code != r.ok:
			t.Fatalf("request %d (%s): %d %s, want %d or 429", i, r.name, a.code, a.body, r.ok)
		case r.ok == http.StatusAccepted:
			async = append(async, decodeAs[jobs.Job](t, a.body).ID)
		}
	}
	t.Logf("answers by status: %v", count)
	if count[http.StatusTooManyRequests] == 0 || count[http.StatusOK]+count[http.StatusAccepted] == 0 {
		t.Fatalf("answers %v: want some accepted and some refused by the full queue", count)
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadWait)
	defer cancel()
	for _, id := range async {
		if _, err := ts.queue.Wait(ctx, id); err != nil {
			t.Fatalf("rfnet job %s: %v", id, err)
		}
	}

	// Every accepted request is one job, finished once: succeeded, with one final event
	// that is its last, and counted once by the metrics.
	list := ts.queue.List()
	if accepted := count[http.StatusOK] + count[http.StatusAccepted]; len(list) != accepted {
		t.Fatalf("%d jobs for %d accepted requests", len(list), accepted)
	}
	if finished := finishedCount(t, ts); int(finished) != len(list) {
		t.Fatalf("metrics count %v finished jobs, want %d", finished, len(list))
	}
	for _, j := range list {
		if j.State != jobs.Succeeded {
			t.Fatalf("job %s (%s): %s %q", j.ID, j.Kind, j.State, j.Error)
		}
		events, _, stop, err := ts.queue.Events(j.ID, 0)
		stop()
		if err != nil {
			t.Fatal(err)
		}
		finals := 0
		for k, ev := range events {
			var d struct{ State jobs.State }
			if json.Unmarshal(ev.Data, &d); ev.Type == "state" && d.State.Done() {
				finals++
				if k != len(events)-1 {
					t.Fatalf("job %s: a final state event at %d of %d", j.ID, k+1, len(events))
				}
			}
		}
		if finals != 1 {
			t.Fatalf("job %s: %d final state events, want 1", j.ID, finals)
		}
	}

	client.CloseIdleConnections()
	shutdown(t, ts)
	if got := settle(runtime.NumGoroutine, goroutines); got > goroutines {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after the server stopped, %d before:\n%s", got, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if got := settle(func() int { return openFDs(t) }, fds); got > fds {
		t.Fatalf("%d open files after the server stopped, %d before", got, fds)
	}
	// Generous: the answers and the server's index of jobs are still referenced.
	if got := heapAfterGC(); got > heap+64<<20 {
		t.Fatalf("heap %d MiB after the load, %d MiB before", got>>20, heap>>20)
	}
}

// shutdown stops a test server now (its cleanup's second Shutdown then does nothing).
func shutdown(t *testing.T, ts *testServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loadWait)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("shutdown: %v", err)
	}
}

// finishedCount sums rfnet_jobs_finished_total over its labels, from the server's registry.
func finishedCount(t *testing.T, ts *testServer) float64 {
	t.Helper()
	families, err := ts.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == "rfnet_jobs_finished_total" {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// readUntilClosed reads conn until the server closes it or answers, returning what came.
func readUntilClosed(conn net.Conn, got chan<- []byte) {
	var buf bytes.Buffer
	io.Copy(&buf, conn)
	got <- buf.Bytes()
}

// A client that trickles its headers, or its body, byte by byte is cut off by the
// server's read timeouts (shortened here from 10 s and 1 min).
func TestSlowClientsAreCutOff(t *testing.T) {
	ts := newTunedTestServer(t, Options{}, func(h *http.Server) {
		h.ReadHeaderTimeout = 200 * time.Millisecond
		h.ReadTimeout = 500 * time.Millisecond
	})
	addr := strings.TrimPrefix(ts.URL, "http://")
	body := `{"prompt": "a red apple", "size": "64x64", "steps": 2}`
	for _, c := range []struct {
		name    string
		head    string // sent at once
		trickle string // then one byte every 20 ms, far longer than the timeouts
	}{
		{"headers", "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\n",
			"Content-Type: application/json\r\nX-Padding: " + strings.Repeat("p", 500) + "\r\n\r\n" + body},
		{"body", fmt.Sprintf("POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body)+500),
			body + strings.Repeat(" ", 500)},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			got := make(chan []byte, 1)
			go readUntilClosed(conn, got)
			if _, err := io.WriteString(conn, c.head); err != nil {
				t.Fatal(err)
			}
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case answer := <-got:
					if i >= len(c.trickle) {
						t.Fatalf("the whole request went through: %q", answer)
					}
					// The server answers 400/408 or just closes the connection.
					if len(answer) > 0 && !bytes.HasPrefix(answer, []byte("HTTP/1.1 4")) {
						t.Fatalf("after %d of %d trickled bytes the server answered %q", i, len(c.trickle), answer)
					}
					t.Logf("cut off after %d of %d trickled bytes: %.80q", i, len(c.trickle), answer)
					return
				case <-tick.C:
					if i < len(c.trickle) {
						conn.Write([]byte{c.trickle[i]}) // fails once the server has closed: the read side says so
					}
				}
			}
		})
	}
}

// A body past --max-body is a 413 naming "body", with a Content-Length, chunked, or
// endless (the server stops reading: the client sees the 413 or a closed connection).
func TestOversizedBodyIsRefused(t *testing.T) {
	o := Options{Limits: DefaultLimits()}
	o.Limits.MaxBody = 4096
	ts := newTestServer(t, o)
	big := `{"prompt": "` + strings.Repeat("a", 8192) + `"}`
	c := &http.Client{Timeout: loadWait}
	for _, body := range []struct {
		name string
		r    func() io.Reader
	}{
		{"with a length", func() io.Reader { return strings.NewReader(big) }},
		{"chunked", func() io.Reader { return io.MultiReader(strings.NewReader(big)) }},
		{"endless", func() io.Reader { return io.MultiReader(strings.NewReader(`{"prompt": "`), endless{}) }},
	} {
		t.Run(body.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", ts.URL+"/v1/images/generations", body.r())
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				if body.name == "endless" {
					t.Logf("the connection closed while the client wrote: %v", err)
					return
				}
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if e := decodeAs[errorBody](t, raw); resp.StatusCode != http.StatusRequestEntityTooLarge || e.Error.Param != "body" {
				t.Fatalf("%d %s, want 413 naming body", resp.StatusCode, raw)
			}
		})
	}
}

// endless is a body that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}
