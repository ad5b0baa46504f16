package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/tensor"
)

func TestMain(m *testing.M) { os.Exit(fixtures.RunWithTempCache(m)) }

// The tiny models are loaded once per test binary: loading is what the
// server does once, and tests share it read-only.
var (
	modelsMu sync.Mutex
	models   = map[string]*pipeline.Model{}
)

// tinyModel is testdata/models/<name> on the CPU in fp32.
func tinyModel(t testing.TB, name string) *pipeline.Model {
	t.Helper()
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if m, ok := models[name]; ok {
		return m
	}
	m, err := pipeline.Load(fixtures.Path("models", name), pipeline.LoadOptions{Backend: cpu.New(), DType: tensor.Float32})
	if err != nil {
		t.Fatal(err)
	}
	models[name] = m
	return m
}

// testServer is a Server on a loopback port.
type testServer struct {
	*Server
	URL string
	t   testing.TB
	key string // sent as the bearer token when not ""
}

// newTestServer starts a server on the tiny SD 2.x model (unless o names
// another), with the offline planner, small limits' defaults and its data
// in a temporary folder (unless o.DataDir names one); it shuts down with
// the test. Fields of o left zero get test defaults.
func newTestServer(t testing.TB, o Options) *testServer {
	t.Helper()
	return newTunedTestServer(t, o, nil)
}

// newTunedTestServer is newTestServer with tune applied to the http.Server
// before it serves (the fault tests shorten its timeouts).
func newTunedTestServer(t testing.TB, o Options, tune func(*http.Server)) *testServer {
	t.Helper()
	if o.Model == nil {
		o.Model = tinyModel(t, "tiny-sd2")
	}
	if o.Planner == nil {
		o.Planner = llm.Offline{MaxObjects: 4}
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Queue == 0 {
		o.Queue = 4
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits()
	}
	if o.Checkpoint == (infotext.Checkpoint{}) {
		c, err := infotext.CheckpointOf(o.Model)
		if err != nil {
			t.Fatal(err)
		}
		o.Checkpoint = c
	}
	if o.Version == "" {
		o.Version = "test"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(s.http)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	ts := &testServer{Server: s, URL: "http://" + l.Addr().String(), t: t, key: o.APIKey}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ts
}

// do sends a request with a JSON body (nil: none) and returns the status
// and the body.
func (ts *testServer) do(method, path string, body any) (int, []byte, http.Header) {
	ts.t.Helper()
	var r io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			r = bytes.NewReader([]byte(b))
		case []byte:
			r = bytes.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				ts.t.Fatal(err)
			}
			r = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		ts.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ts.key != "" {
		req.Header.Set("Authorization", "Bearer "+ts.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

// decodeAs decodes an answer's JSON body, failing the test otherwise.
func decodeAs[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("answer %.300s: %v", body, err)
	}
	return v
}

// errorOf is an error answer's body.
type errorBody struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Param   string `json:"param"`
	} `json:"error"`
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	ID, Type, Data string
}

// events reads a job's event stream to its end (the server closes it after
// the job's final event); lastID, when not "", is sent as Last-Event-ID.
// Comment lines are counted in comments.
func (ts *testServer) events(id, lastID string) (events []sseEvent, comments int) {
	ts.t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+"/v1/jobs/"+id+"/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	if ts.key != "" {
		req.Header.Set("Authorization", "Bearer "+ts.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		ts.t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var e sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if e != (sseEvent{}) {
				events = append(events, e)
			}
			e = sseEvent{}
		case strings.HasPrefix(line, ":"):
			comments++
		case strings.HasPrefix(line, "id: "):
			e.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.Type = line[7:]
		case strings.HasPrefix(line, "data: "):
			e.Data = line[6:]
		default:
			ts.t.Fatalf("events: line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		ts.t.Fatal(err)
	}
	return events, comments
}

// waitJob polls a job until done(job) holds, for a few seconds at most.
func (ts *testServer) waitJob(id string, done func(j map[string]any) bool) map[string]any {
	ts.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		code, body, _ := ts.do("GET", "/v1/jobs/"+id, nil)
		if code != http.StatusOK {
			ts.t.Fatalf("job %s: %d %s", id, code, body)
		}
		j := decodeAs[map[string]any](ts.t, body)
		if done(j) {
			return j
		}
	}
	ts.t.Fatalf("job %s: waited a minute", id)
	return nil
}

// stepsDone is a job's progress.step.
func stepsDone(j map[string]any) float64 {
	p, _ := j["progress"].(map[string]any)
	s, _ := p["step"].(float64)
	return s
}

// fakePlanner is the LLM planner asking a fake OpenAI endpoint that always
// answers plan (the tiny run's two objects by default).
func fakePlanner(t testing.TB, plan string) llm.Planner {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: plan} })
	t.Cleanup(s.Close)
	c := llm.DefaultConfig()
	c.BaseURL, c.APIKey, c.CacheDir, c.Retries = s.BaseURL(), "k", "", 0
	return llm.NewOpenAI(c)
}

// fakePlan is the plan the fake LLM answers: two objects.
const fakePlan = `{"objects": [{"name": "a mouse", "box": [40, 250, 160, 160], "description": "baring tiny teeth", "alternatives": ["stalking low", "eyes fixed on its prey"]},
{"name": "a lion", "box": [240, 120, 240, 300], "description": "cowering in fear", "alternatives": ["backing away", "trembling"]}],
"background": "the savanna at dusk", "negative": "cartoon"}`
