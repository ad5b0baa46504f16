package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// startServe runs `rfnet-native serve args...` in-process on a free
// loopback port; it stops (as on SIGTERM) with the test.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	fs := pflag.NewFlagSet("rfnet-native serve", pflag.ContinueOnError)
	f := &serveFlags{}
	f.register(fs)
	if err := fs.Parse(longFlags(append([]string{"--addr", "127.0.0.1:0"}, args...), fs)); err != nil {
		t.Fatal(err)
	}
	ready, stop, done := make(chan string, 1), make(chan struct{}), make(chan error, 1)
	f.ready, f.stop = func(addr string) { ready <- addr }, stop
	go func() { done <- f.run(fs) }()
	t.Cleanup(func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return ""
}

// An RFNet job of the server writes what generate writes with the same
// settings: the same files, byte for byte but for the timings (run.json's
// seconds, trace.jsonl's timing rows and index.html, which shows them).
func TestServeRFNetJobEqualsGenerate(t *testing.T) {
	llmServer := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer llmServer.Close()
	llmArgs := []string{"--llm-base-url", llmServer.BaseURL(), "--llm-api-key", "k", "--llm-cache", ""}
	dir := t.TempDir()
	cli := filepath.Join(dir, "cli")
	if err := run(append(rfnetArgs(cli, "--seed", "3"), llmArgs...)); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	url := startServe(t, append([]string{"--weights", fixtures.Path("models", "tiny-sd2"), "--data", data, "--api-key", "k2"}, llmArgs...)...)
	body := `{"prompt": "a mouse hunting a lion", "width": 128, "height": 128, "steps": 6, "seed": 3}`
	var job struct {
		ID, State string
		Files     []string
	}
	call(t, "POST", url+"/v1/rfnet/jobs", body, http.StatusAccepted, &job)
	for deadline := time.Now().Add(time.Minute); job.State != "succeeded"; time.Sleep(20 * time.Millisecond) {
		if job.State == "failed" || job.State == "canceled" || time.Now().After(deadline) {
			t.Fatalf("job %+v", job)
		}
		call(t, "GET", url+"/v1/jobs/"+job.ID, "", http.StatusOK, &job)
	}
	var want []string
	filepath.WalkDir(cli, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(cli, path)
			want = append(want, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(want)
	if !slices.Equal(job.Files, want) {
		t.Fatalf("the job's files\n%v\ngenerate's\n%v", job.Files, want)
	}
	for _, name := range want {
		ours, err := os.ReadFile(filepath.Join(cli, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		var theirs []byte
		call(t, "GET", url+"/v1/jobs/"+job.ID+"/files/"+name, "", http.StatusOK, &theirs)
		switch name {
		case "run.json":
			ours, theirs = withoutKeys(t, ours, "seconds", "profile_seconds"), withoutKeys(t, theirs, "seconds", "profile_seconds")
		case "trace.jsonl":
			ours, theirs = withoutTimings(ours), withoutTimings(theirs)
		case "index.html":
			continue // it shows the timings
		}
		if strings.HasSuffix(name, ".png") {
			samePixels(t, name, ours, theirs)
		}
		if !bytes.Equal(ours, theirs) {
			t.Errorf("%s differs from generate's", name)
		}
	}
}

// call sends a request with the bearer key k2 and decodes the JSON answer
// into out (a *[]byte gets the raw body).
func call(t *testing.T, method, url, body string, want int, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer k2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	if b, ok := out.(*[]byte); ok {
		*b = raw
		return
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}

// withoutKeys is a JSON object without the given top-level keys, re-encoded.
func withoutKeys(t *testing.T, raw []byte, keys ...string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		delete(m, k)
	}
	out, _ := json.Marshal(m)
	return out
}

// withoutTimings drops trace.jsonl's timing rows.
func withoutTimings(raw []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"stage":"timing"`) {
			out.Write(append(sc.Bytes(), '\n'))
		}
	}
	return out.Bytes()
}

// samePixels fails when two PNGs' pixels differ.
func samePixels(t *testing.T, name string, a, b []byte) {
	t.Helper()
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if ia.Bounds() != ib.Bounds() {
		t.Fatalf("%s: %v and %v", name, ia.Bounds(), ib.Bounds())
	}
	r := ia.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if ia.At(x, y) != ib.At(x, y) {
				t.Fatalf("%s: pixel (%d, %d) %v, generate's %v", name, x, y, ib.At(x, y), ia.At(x, y))
			}
		}
	}
}

// serve's bad flags are refused naming the flag, before the model loads
// (the weights here do not exist), but for --addr's port, which only
// listening tells.
func TestServeFlagErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	tiny := fixtures.Path("models", "tiny-sd2")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--weights", missing, "--queue", "0"}, "--queue 0"},
		{[]string{"--weights", missing, "--max-body", "lots"}, "--max-body"},
		{[]string{"--weights", missing, "--max-body", "0"}, "--max-body"},
		{[]string{"--weights", missing, "--addr", "7860"}, "--addr"},
		{[]string{"--weights", missing, "--max-width", "100"}, "--max-width"},
		{[]string{"--weights", missing, "--max-steps", "0"}, "--max-steps"},
		{[]string{"--weights", missing, "--job-timeout", "0s"}, "--job-timeout"},
		{[]string{"--weights", missing, "--public-url", "example.com"}, "--public-url"},
		{[]string{"--weights", missing, "--shutdown-grace", "-1s"}, "--shutdown-grace"},
		{[]string{"--weights", missing, "--max-objects", "0"}, "--max-objects"},
		{[]string{"--weights", missing, "--data", ""}, "--data"},
		{[]string{"--weights", missing, "--workers", "0"}, "--workers 0"},
		{[]string{"--weights", tiny, "--offline-planner", "--data", t.TempDir(), "--addr", "127.0.0.1:-1"}, "--addr"},
		{[]string{"--weights", missing, "--sdxl-size", "512"}, "--sdxl-size applies with --sdxl"},
		{[]string{"--weights", missing, "--sdxl", "--sdxl-size", "100"}, "--sdxl-size"},
		// Named once the model has loaded, before the server listens.
		{[]string{"--weights", tiny, "--offline-planner", "--data", t.TempDir(), "--sam", missing}, "--sam"},
		{[]string{"--weights", tiny, "--offline-planner", "--data", t.TempDir(), "--sdxl", "--sdxl-weights", missing, "--offline"}, "--sdxl-weights"},
	} {
		err := run(append([]string{"serve"}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.args, err, c.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1MiB": 1 << 20, "512": 512, "2 KiB": 2048, "1MB": 1e6, "10B": 10} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "1TiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("%q was accepted", in)
		}
	}
}

// serveChildEnv carries a child's serve arguments, one per line: the test
// binary, run again with it, is `rfnet-native serve` in a process of its
// own, so that a real SIGTERM can reach it.
const serveChildEnv = "RFNET_TEST_SERVE_ARGS"

// SIGTERM stops the server gracefully: a log line says where it listens,
// then it stops and exits 0.
func TestServeStopsOnSIGTERM(t *testing.T) {
	if args := os.Getenv(serveChildEnv); args != "" {
		if err := run(append([]string{"serve"}, strings.Split(args, "\n")...)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	args := []string{"--weights", fixtures.Path("models", "tiny-sd2"), "--offline-planner", "--addr", "127.0.0.1:0", "--data", t.TempDir()}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeStopsOnSIGTERM$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+strings.Join(args, "\n"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// A child that never says it listens, or never stops, is killed, which
	// ends the reads below and fails the test.
	watchdog := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	lines := bufio.NewScanner(stderr)
	url := ""
	for url == "" && lines.Scan() {
		if _, after, ok := strings.Cut(lines.Text(), " url="); ok {
			url, _, _ = strings.Cut(after, " ")
		}
	}
	if url == "" {
		t.Fatalf("no listening line: %v", lines.Err())
	}
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(rest.String(), "stopped") {
		t.Fatalf("after SIGTERM: %v\n%s", err, rest.String())
	}
}
