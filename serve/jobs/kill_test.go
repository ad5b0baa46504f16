package jobs

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childDirEnv, when set, makes the test binary the child of TestKill9KeepsFinishedJobsWhole:
// it runs a queue on that folder until it is killed.
const childDirEnv = "RFNET_JOBS_KILL_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		killChild(dir)
		return
	}
	os.Exit(m.Run())
}

// writerFiles are the files a writer job writes, in the order it writes them.
var writerFiles = []string{"image.png", "objects/00-a.png", "run.json"}

// writer is a Work that writes writerFiles with random contents, a piece at a time, and
// returns the hash that filesHash computes over them.
func writer(ctx context.Context, dir string, r Reporter) (any, error) {
	h := sha256.New()
	for i, name := range writerFiles {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		io.WriteString(h, name+"\n")
		for step := range 8 {
			chunk := make([]byte, 4096)
			rand.Read(chunk)
			f.Write(chunk)
			h.Write(chunk)
			r.Progress(Progress{Stage: "write", Step: i*8 + step + 1, Steps: 24})
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
	}
	return map[string]string{"sha256": hex.EncodeToString(h.Sum(nil))}, nil
}

// filesHash hashes a finished job's files as writer did.
func filesHash(q *Queue, j Job) (string, error) {
	h := sha256.New()
	for _, name := range j.Files {
		path, err := q.File(j.ID, name)
		if err != nil {
			return "", err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		io.WriteString(h, name+"\n")
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// killChild runs two workers: one job that never ends and a stream of writers. It
// prints "running" once the endless job has started, "submitted" once all are queued and
// "done <id>" as writers finish.
func killChild(dir string) {
	time.AfterFunc(time.Minute, func() { os.Exit(3) }) // the parent died without killing us
	var out = make(chan string, 1000)
	go func() {
		for line := range out {
			fmt.Println(line)
		}
	}()
	q, err := Open(dir, Options{Length: 100, Workers: 2, OnFinish: func(j Job) { out <- "done " + j.ID }})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	q.Submit("endless", nil, 0, func(ctx context.Context, dir string, r Reporter) (any, error) {
		os.WriteFile(filepath.Join(dir, "partial.png"), []byte("half an image"), 0o644)
		out <- "running"
		<-ctx.Done()
		return nil, ctx.Err()
	})
	for range 60 {
		if _, err := q.Submit("writer", nil, 0, writer); err != nil {
			fmt.Println("submit:", err)
			os.Exit(2)
		}
	}
	out <- "submitted"
	select {}
}

func TestKill9KeepsFinishedJobsWhole(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestKill9KeepsFinishedJobsWhole$")
	child.Env = append(os.Environ(), childDirEnv+"="+dir)
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()

	// Kill once the endless job runs and a few writers have finished, while the
	// others are being written.
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	running, submitted, done := false, false, 0
	for !running || !submitted || done < 5 {
		line, ok := <-lines
		switch {
		case !ok:
			t.Fatal("the child ended before it was killed")
		case line == "running":
			running = true
		case line == "submitted":
			submitted = true
		case strings.HasPrefix(line, "done "):
			done++
		default:
			t.Fatalf("the child says %q", line)
		}
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	for range lines {
	}
	stored := map[State]int{}
	ids, _ := os.ReadDir(filepath.Join(dir, "jobs"))
	for _, id := range ids {
		j, err := readJob(filepath.Join(dir, "jobs", id.Name()))
		if err != nil {
			t.Fatalf("after kill -9: %v", err)
		}
		stored[j.State]++
	}
	t.Logf("stored at the kill: %v", stored)

	q := openAt(t, dir, Options{Length: 100, Workers: 2, Rebuild: func(kind string, _ json.RawMessage) (Work, error) {
		if kind != "writer" {
			return nil, fmt.Errorf("kind %q", kind)
		}
		return writer, nil
	}})
	count := map[State]int{}
	for _, j := range q.List() {
		j = wait(t, q, j.ID) // requeued writers run now
		count[j.State]++
		switch {
		case j.Kind == "endless":
			wantState(t, j, Failed, errInterrupted)
		case j.State == Failed:
			wantState(t, j, Failed, errInterrupted) // a writer that was running
		case j.State == Succeeded:
			var res struct{ SHA256 string }
			json.Unmarshal(j.Result, &res)
			got, err := filesHash(q, j)
			if err != nil || got != res.SHA256 || strings.Join(j.Files, ",") != strings.Join(writerFiles, ",") {
				t.Fatalf("job %s: files %v hash %s (%v), want %v hashing to %s", j.ID, j.Files, got, err, writerFiles, res.SHA256)
			}
		default:
			t.Fatalf("job %s ended %s %q", j.ID, j.State, j.Error)
		}
		if j.State == Failed {
			if _, err := os.Stat(filepath.Join(dir, "jobs", j.ID, filesDir)); !os.IsNotExist(err) {
				t.Fatalf("interrupted job %s kept its partial files (%v)", j.ID, err)
			}
		}
	}
	if count[Succeeded]+count[Failed] != 61 || count[Succeeded] < 58 {
		t.Fatalf("after the restart: %v, want 61 jobs, all succeeded but the interrupted ones (at most 3)", count)
	}
}
