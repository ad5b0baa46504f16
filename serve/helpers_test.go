package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/cpu"
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
