package serve

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashDataEnv, when set, makes TestCrashServerChild the server that
// TestKill9KeepsFinishedResults kills: the test binary run again, serving that folder.
const crashDataEnv = "RFNET_SERVE_CRASH_DATA"

// TestCrashServerChild is the helper process of TestKill9KeepsFinishedResults (the
// os/exec tests' pattern): run without crashDataEnv, as in every normal run, it returns
// at once. With it, it serves the folder until it is killed and prints its URL.
func TestCrashServerChild(t *testing.T) {
	dir := os.Getenv(crashDataEnv)
	if dir == "" {
		return
	}
	time.AfterFunc(2*time.Minute, func() { os.Exit(3) }) // the parent died without killing us
	ts := newTestServer(t, Options{DataDir: dir, Queue: 8, Workers: 1})
	fmt.Println("listening", ts.URL)
	select {}
}

// startServerChild starts a server process on dir; the testServer it returns talks to
// it over HTTP (its Server is nil), and kill ends it with SIGKILL.
func startServerChild(t *testing.T, dir string) (child *testServer, kill func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashServerChild$")
	cmd.Env = append(os.Environ(), crashDataEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill = func() {
		if !killed {
			killed = true
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
		}
	}
	t.Cleanup(kill)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line := <-lines:
		if !strings.HasPrefix(line, "listening ") {
			t.Fatalf("the server child says %q", line)
		}
		go func() {
			for range lines {
			}
		}()
		return &testServer{URL: strings.TrimPrefix(line, "listening "), t: t}, kill
	case <-time.After(loadWait):
		t.Fatal("the server child did not start")
		panic("unreachable")
	}
}

// fileHashes fetches every file of a succeeded job (as GET /v1/jobs/{id} gave it) and
// hashes it.
func fileHashes(ts *testServer, j map[string]any) map[string][32]byte {
	ts.t.Helper()
	hashes := map[string][32]byte{}
	files, _ := j["files"].([]any)
	for _, f := range files {
		name, _ := f.(string)
		code, body, _ := ts.do("GET", fmt.Sprintf("/v1/jobs/%s/files/%s", j["id"], name), nil)
		if code != http.StatusOK {
			ts.t.Fatalf("job %s file %s: %d", j["id"], name, code)
		}
		hashes[name] = sha256.Sum256(body)
	}
	return hashes
}

// withSeed is a copy of a job request with its own seed.
func withSeed(req map[string]any, seed int) map[string]any {
	out := map[string]any{"seed": seed}
	for k, v := range req {
		out[k] = v
	}
	return out
}

// kill -9 of the server while a job runs: after a restart on the same folder every
// finished job is served byte for byte as before with its events, the interrupted one
// is failed, the queued ones run.
func TestKill9KeepsFinishedResults(t *testing.T) {
	dir := t.TempDir()
	child, kill := startServerChild(t, dir)
	done := map[string]map[string][32]byte{}
	for seed := range 2 {
		id := child.submitJob(withSeed(shortJob, seed))
		hashes := fileHashes(child, child.waitJob(id, state("succeeded")))
		if len(hashes) == 0 {
			t.Fatalf("job %s succeeded without files", id)
		}
		done[id] = hashes
	}
	long := child.submitJob(longJob)
	queued := []string{child.submitJob(withSeed(shortJob, 6)), child.submitJob(withSeed(shortJob, 7))}
	child.waitJob(long, running)
	kill()

	child, _ = startServerChild(t, dir)
	for id, before := range done {
		after := fileHashes(child, child.waitJob(id, state("succeeded")))
		if len(after) != len(before) {
			t.Fatalf("job %s has %d files after the restart, %d before", id, len(after), len(before))
		}
		for name, h := range after {
			if h != before[name] {
				t.Fatalf("job %s file %s changed across the restart", id, name)
			}
		}
		events, _ := child.events(id, "")
		if last := events[len(events)-1]; last.Type != "state" || !strings.Contains(last.Data, `"succeeded"`) {
			t.Fatalf("job %s's replayed events end with %+v", id, last)
		}
	}
	j := child.waitJob(long, func(j map[string]any) bool { return j["state"] != "running" })
	if j["state"] != "failed" || j["error"] != "interrupted: the server stopped while this job ran" || j["files"] != nil {
		t.Fatalf("the job running at the kill: %v, want failed as interrupted", j)
	}
	if code, _, _ := child.do("GET", "/v1/jobs/"+long+"/files/image.png", nil); code != http.StatusNotFound {
		t.Fatalf("the interrupted job's image: %d, want 404", code)
	}
	for _, id := range queued {
		child.waitJob(id, state("succeeded"))
	}
}
