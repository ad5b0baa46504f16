package serve

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/serve/jobs"
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

// startServerChild starts a server process on dir and returns its URL and the kill -9
// that ends it.
func startServerChild(t *testing.T, dir string) (url string, kill func()) {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^TestCrashServerChild$")
	child.Env = append(os.Environ(), crashDataEnv+"="+dir)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill = func() {
		if !killed {
			killed = true
			child.Process.Signal(syscall.SIGKILL)
			child.Wait()
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
		return strings.TrimPrefix(line, "listening "), kill
	case <-time.After(loadWait):
		t.Fatal("the server child did not start")
		panic("unreachable")
	}
}

// fileHashes fetches every file of a succeeded job and hashes it.
func fileHashes(t *testing.T, c *http.Client, base string, j jobs.Job) map[string][32]byte {
	t.Helper()
	hashes := map[string][32]byte{}
	for _, name := range j.Files {
		a, err := send(context.Background(), c, "GET", base+"/v1/jobs/"+j.ID+"/files/"+name, nil)
		if err != nil || a.code != http.StatusOK {
			t.Fatalf("job %s file %s: %d %v", j.ID, name, a.code, err)
		}
		hashes[name] = sha256.Sum256(a.body)
	}
	return hashes
}

// kill -9 of the server while a job runs: after a restart on the same folder every
// finished job is served byte for byte as before, the interrupted one is failed, the
// queued ones run.
func TestKill9KeepsFinishedResults(t *testing.T) {
	dir := t.TempDir()
	url, kill := startServerChild(t, dir)
	c := &http.Client{Timeout: loadWait}
	succeeded := func(j jobs.Job) bool { return j.State == jobs.Succeeded }

	done := map[string]map[string][32]byte{}
	for seed := range uint64(2) {
		id := postJob(t, c, url, rfnetBody(2, seed))
		j := pollJob(t, c, url, id, "succeeded", succeeded)
		if len(j.Files) == 0 {
			t.Fatalf("job %s succeeded without files", id)
		}
		done[id] = fileHashes(t, c, url, j)
	}
	running := postJob(t, c, url, rfnetBody(150, 5))
	queued := []string{postJob(t, c, url, rfnetBody(2, 6)), postJob(t, c, url, rfnetBody(2, 7))}
	pollJob(t, c, url, running, "denoising", denoising)
	kill()

	url, _ = startServerChild(t, dir)
	for id, before := range done {
		j := getJob(t, c, url, id)
		if j.State != jobs.Succeeded || len(j.Files) != len(before) {
			t.Fatalf("finished job %s after the restart: %s with %d files, want succeeded with %d", id, j.State, len(j.Files), len(before))
		}
		for name, h := range fileHashes(t, c, url, j) {
			if h != before[name] {
				t.Fatalf("job %s file %s changed across the restart", id, name)
			}
		}
		if a, _ := send(context.Background(), c, "GET", url+"/v1/jobs/"+id+"/events", nil); lastSSEState(t, a.body) != "succeeded" {
			t.Fatalf("job %s's replayed events end with state %q", id, lastSSEState(t, a.body))
		}
	}
	j := getJob(t, c, url, running)
	if j.State != jobs.Failed || j.Error != "interrupted: the server stopped while this job ran" || len(j.Files) != 0 {
		t.Fatalf("the job running at the kill: %s %q with files %v, want failed as interrupted", j.State, j.Error, j.Files)
	}
	if a, _ := send(context.Background(), c, "GET", url+"/v1/jobs/"+running+"/files/image.png", nil); a.code != http.StatusNotFound {
		t.Fatalf("the interrupted job's image: %d, want 404", a.code)
	}
	for _, id := range queued {
		pollJob(t, c, url, id, "succeeded after the restart", succeeded)
	}
}
