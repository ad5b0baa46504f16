package rfbench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/judge"
	"github.com/rfnet/rfnet-native/pipeline"
)

// writeItem writes a finished sd item of the prompt id, seed 0, without a
// model: an 8×8 PNG and its sidecar.
func writeItem(t *testing.T, run, id string) Meta {
	t.Helper()
	var buf bytes.Buffer
	im := image.NewGray(image.Rect(0, 0, 8, 8))
	copy(im.Pix, id)
	png.Encode(&buf, im)
	sum := sha256.Sum256(buf.Bytes())
	m := Meta{ID: id, Prompt: "a cat", Method: "sd", Image: "images/sd/" + id + "-s0.png", ImageBytes: int64(buf.Len()),
		ImageSHA256: hex.EncodeToString(sum[:]), Width: 8, Height: 8, Steps: 3, Guidance: 7.5, Scheduler: "ddim"}
	if err := writeRel(run, m.Image, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := pipeline.WriteJSON(filepath.Join(run, "images", "sd", id+"-s0.json"), m); err != nil {
		t.Fatal(err)
	}
	return m
}

// writeResult writes a judge result file at eval/gpt4score/sd/<id>-s0.json.
func writeResult(t *testing.T, run, id, body string) {
	t.Helper()
	if err := writeRel(run, "eval/gpt4score/sd/"+id+"-s0.json", []byte(body)); err != nil {
		t.Fatal(err)
	}
}

// within runs f and fails the test when f has not returned after a minute,
// which only a read blocked on a named pipe takes; the pipes are then opened
// for writing, which lets such a read go on, so the test binary can end.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		for _, p := range fifos {
			if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
		}
		t.Fatalf("%s blocked", what)
	}
}

var fifos []string

func mkfifo(t *testing.T, path string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skip("no mkfifo here:", err)
	}
	fifos = append(fifos, path)
}

// A named pipe, a device or a huge file anywhere in a run folder is refused
// without being opened or read whole: Check, LoadMetas, LoadResults,
// ReadRun, Lock, Start and Merge return, and say which file and why.
func TestRunFolderRefusesSpecialFiles(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	for _, c := range []struct {
		name  string
		place func(t *testing.T, run string)
		want  string // in what one of the calls says
	}{
		{"image FIFO", func(t *testing.T, run string) {
			os.Remove(filepath.Join(run, "images/sd/p1-s0.png"))
			mkfifo(t, filepath.Join(run, "images/sd/p1-s0.png"))
		}, "images/sd/p1-s0.png: " + "RUN/images/sd/p1-s0.png is a named pipe (FIFO), not a regular file"},
		{"sidecar FIFO", func(t *testing.T, run string) {
			os.Remove(filepath.Join(run, "images/sd/p1-s0.json"))
			mkfifo(t, filepath.Join(run, "images/sd/p1-s0.json"))
		}, "images/sd/p1-s0.json: RUN/images/sd/p1-s0.json is a named pipe (FIFO)"},
		{"sidecar linked to /dev/zero", func(t *testing.T, run string) {
			os.Remove(filepath.Join(run, "images/sd/p1-s0.json"))
			os.Symlink("/dev/zero", filepath.Join(run, "images/sd/p1-s0.json"))
		}, "images/sd/p1-s0.json: RUN/images/sd/p1-s0.json is a character device"},
		{"huge sidecar", func(t *testing.T, run string) {
			os.Truncate(filepath.Join(run, "images/sd/p1-s0.json"), MaxJSON+1)
		}, fmt.Sprintf("images/sd/p1-s0.json: RUN/images/sd/p1-s0.json: %d bytes, more than the %d such a file may have: it is broken", MaxJSON+1, MaxJSON)},
		{"image a folder", func(t *testing.T, run string) {
			os.Remove(filepath.Join(run, "images/sd/p1-s0.png"))
			os.Mkdir(filepath.Join(run, "images/sd/p1-s0.png"), 0o755)
		}, "images/sd/p1-s0.png: RUN/images/sd/p1-s0.png is a folder, not a file"},
		{"result FIFO", func(t *testing.T, run string) {
			os.Remove(filepath.Join(run, "eval/gpt4score/sd/p1-s0.json"))
			mkfifo(t, filepath.Join(run, "eval/gpt4score/sd/p1-s0.json"))
		}, "eval/gpt4score/sd/p1-s0.json: RUN/eval/gpt4score/sd/p1-s0.json is a named pipe (FIFO)"},
		{"result linked to /dev/zero", func(t *testing.T, run string) {
			os.Remove(filepath.Join(run, "eval/gpt4score/sd/p1-s0.json"))
			os.Symlink("/dev/zero", filepath.Join(run, "eval/gpt4score/sd/p1-s0.json"))
		}, "eval/gpt4score/sd/p1-s0.json: RUN/eval/gpt4score/sd/p1-s0.json is a character device"},
		{"plan FIFO", func(t *testing.T, run string) {
			mkfifo(t, filepath.Join(run, "plans/p1.json"))
		}, "leaving out plans/p1.json of RUN: RUN/plans/p1.json is a named pipe (FIFO)"},
		{"bench.json FIFO", func(t *testing.T, run string) {
			os.Remove(filepath.Join(run, "bench.json"))
			mkfifo(t, filepath.Join(run, "bench.json"))
		}, "RUN/bench.json is a named pipe (FIFO)"},
		{"bench.json.lock FIFO", func(t *testing.T, run string) {
			mkfifo(t, filepath.Join(run, "bench.json.lock"))
		}, "RUN/bench.json.lock is a named pipe (FIFO)"},
		{"lock FIFO", func(t *testing.T, run string) {
			mkfifo(t, filepath.Join(run, "locks/elsewhere-1-1.json"))
		}, "RUN/locks/elsewhere-1-1.json is a named pipe (FIFO)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := t.TempDir()
			if err := Start(run, Run{PromptsSHA256: "p", Methods: []string{"sd"}, Seeds: 1}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"p1", "p2"} {
				m := writeItem(t, run, id)
				writeResult(t, run, id, `{"id": "`+id+`", "method": "sd", "seed": 0, "status": "ok", "score": 0.5, "image_sha256": "`+m.ImageSHA256+`"}`)
			}
			c.place(t, run)
			var said []string
			say := func(err error, list []string) {
				if err != nil {
					said = append(said, err.Error())
				}
				said = append(said, list...)
			}
			within(t, "Check", func() { _, err := Check(run, "images/sd/p1-s0.json"); say(err, nil) })
			within(t, "LoadMetas", func() { _, broken, err := LoadMetas(run); say(err, broken) })
			within(t, "LoadResults", func() { _, broken, err := LoadResults(run, "gpt4score"); say(err, broken) })
			within(t, "ReadRun", func() { _, err := ReadRun(run); say(err, nil) })
			within(t, "Lock", func() {
				release, err := Lock(run, Settings{PromptsSHA256: "p"}, nil)
				say(err, nil)
				if err == nil {
					release()
				}
			})
			within(t, "Start", func() { say(Start(run, Run{PromptsSHA256: "p", Methods: []string{"sd"}, Seeds: 1}), nil) })
			within(t, "Merge", func() {
				var log strings.Builder
				_, err := Merge(t.TempDir(), []string{run}, &log)
				say(err, strings.Split(log.String(), "\n"))
			})
			want := strings.ReplaceAll(c.want, "RUN", run)
			if !strings.Contains(strings.Join(said, "\n"), want) {
				t.Fatalf("nothing says %q:\n%s", want, strings.Join(said, "\n"))
			}
		})
	}
}

// A claim that is a named pipe fails its item, with the reason, instead of
// blocking the run. A named pipe or a folder where an item's image goes
// fails the item before it is generated, as a failure a rerun does not fix.
func TestRunSpecialFiles(t *testing.T) {
	out := t.TempDir()
	r, _ := tinyRunner(t, out)
	items := Items(DefaultPrompts()[:4], []string{"sd"}, 1)
	if _, err := r.Run(context.Background(), items[3:]); err != nil {
		t.Fatal(err)
	}
	img0, _ := itemPaths(items[0])
	mkfifo(t, filepath.Join(out, filepath.FromSlash(img0)))
	mkfifo(t, filepath.Join(out, "images", "sd", items[1].Prompt.ID+"-s0.claim"))
	os.Mkdir(filepath.Join(out, "images", "sd", items[2].Prompt.ID+"-s0.json"), 0o755)
	img3, _ := itemPaths(items[3])
	os.Remove(filepath.Join(out, filepath.FromSlash(img3)))
	os.Mkdir(filepath.Join(out, filepath.FromSlash(img3)), 0o755)
	var s Summary
	var err error
	within(t, "Run", func() { s, err = r.Run(context.Background(), items) })
	want := []string{
		items[0].Key() + ": " + img0 + " is a named pipe (FIFO), where the item's file goes: move it away",
		items[1].Key() + ": " + filepath.Join(out, "images", "sd", items[1].Prompt.ID+"-s0.claim") + " is a named pipe (FIFO), not a regular file",
		items[2].Key() + ": images/sd/" + items[2].Prompt.ID + "-s0.json is a folder, where the item's file goes: move it away",
		items[3].Key() + ": " + img3 + " is a folder, where the item's file goes: move it away",
	}
	if err != nil || s.Generated != 0 || s.Failed != 4 || strings.Join(s.Failures, "\n") != strings.Join(want, "\n") ||
		len(s.Lasting) != 3 || s.RedoFailed != 2 || len(s.Broken) != 2 {
		t.Fatalf("%+v, %v\nwant failures:\n%s", s, err, strings.Join(want, "\n"))
	}
	// A plan that is a named pipe is not read, and no plan can replace it.
	rfnetItem := Items(DefaultPrompts()[4:5], []string{"rfnet"}, 1)
	plan := filepath.Join(out, "plans", rfnetItem[0].Prompt.ID+".json")
	mkfifo(t, plan)
	within(t, "Run", func() { s, err = r.Run(context.Background(), rfnetItem) })
	if want := rfnetItem[0].Key() + ": " + plan + " is a named pipe (FIFO), not a regular file: move it away"; err != nil ||
		len(s.Failures) != 1 || s.Failures[0] != want || len(s.Lasting) != 1 {
		t.Fatalf("%+v, %v; want the failure %q", s, err, want)
	}
}

// A sidecar that describes another image than the item being resumed (edited,
// or copied from another run) makes the item broken, with the field that
// differs, and the item is made again.
func TestRunRedoesItemOfAnotherDescription(t *testing.T) {
	out := t.TempDir()
	r, _ := tinyRunner(t, out)
	items := Items(DefaultPrompts()[:1], []string{"sd"}, 1)
	if _, err := r.Run(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	_, metaRel := itemPaths(items[0])
	for _, c := range []struct {
		name   string
		change func(m *Meta)
		want   string
	}{
		{"seed", func(m *Meta) { m.Seed = 5 }, "seed 5, this run's item has 0"},
		{"bg seed", func(m *Meta) { m.BgSeed = 7 }, "bg_seed 7, this run's item has 0"},
		{"steps", func(m *Meta) { m.Steps = 9 }, "steps 9, this run's item has 3"},
		{"prompt", func(m *Meta) { m.Prompt = "a dog" }, `prompt "a dog", this run's item has "` + items[0].Prompt.Prompt + `"`},
		{"size", func(m *Meta) { m.Width = 32 }, "size 32×64, this run's item has 64×64"},
		{"guidance", func(m *Meta) { m.Guidance = 3 }, "guidance 3, this run's item has 7.5"},
		{"scheduler", func(m *Meta) { m.Scheduler = "euler" }, `scheduler "euler", this run's item has "ddim"`},
		{"method and id", func(m *Meta) { m.Method, m.ID = "rfnet", "x" }, `id "x", this run's item has "` + items[0].Prompt.ID + `"; method rfnet, this run's item has sd`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m Meta
			if err := readJSON(filepath.Join(out, metaRel), &m); err != nil {
				t.Fatal(err)
			}
			c.change(&m)
			if err := pipeline.WriteJSON(filepath.Join(out, metaRel), m); err != nil {
				t.Fatal(err)
			}
			s, err := r.Run(context.Background(), items)
			if want := metaRel + ": " + c.want; err != nil || s.Generated != 1 || s.Redone != 1 || len(s.Broken) != 1 || s.Broken[0] != want {
				t.Fatalf("%+v, %v; want the broken item %q", s, err, want)
			}
			finished(t, out, items[0])
		})
	}
}

// The recorded size and hash must be ones a file can have.
func TestCheckRefusesInvalidSizeAndHash(t *testing.T) {
	run := t.TempDir()
	m := writeItem(t, run, "p1")
	for _, c := range []struct {
		change func(m *Meta)
		want   string
	}{
		{func(m *Meta) { m.ImageBytes = -1 }, "images/sd/p1-s0.json: records the image size -1, which is invalid"},
		{func(m *Meta) { m.ImageSHA256 = "abc" }, `images/sd/p1-s0.json: records the SHA-256 "abc", which is not 64 hex digits`},
		{func(m *Meta) { m.Seed = 2 }, "images/sd/p1-s0.json: describes the item sd/p1-s2, not the one its name says"},
	} {
		bad := m
		c.change(&bad)
		pipeline.WriteJSON(filepath.Join(run, "images/sd/p1-s0.json"), bad)
		if _, err := Check(run, "images/sd/p1-s0.json"); err == nil || err.Error() != c.want {
			t.Errorf("%v, want %q", err, c.want)
		}
	}
}

// A result whose score is not a number from 0 to 1, that says ok without a
// score, has another status, or describes another item than its name is
// left out as broken, and Evaluate judges its item again.
func TestLoadResultsRefusesBadScores(t *testing.T) {
	run := t.TempDir()
	Start(run, Run{PromptsSHA256: "p", Methods: []string{"sd"}, Seeds: 1})
	hash := map[string]string{}
	for _, id := range []string{"p1", "p2", "p3", "p4", "p5", "p6"} {
		hash[id] = writeItem(t, run, id).ImageSHA256
	}
	result := func(id, fields string) string {
		return `{"id": "` + id + `", "method": "sd", "seed": 0, "image_sha256": "` + hash[id] + `", ` + fields + `}`
	}
	writeResult(t, run, "p1", result("p1", `"status": "ok", "score": 0.73`))
	writeResult(t, run, "p2", result("p2", `"status": "ok", "score": 5.0`))
	writeResult(t, run, "p3", result("p3", `"status": "ok", "score": -0.5`))
	writeResult(t, run, "p4", result("p4", `"status": "ok"`))
	writeResult(t, run, "p5", result("p5", `"status": "great", "score": 0.5`))
	writeResult(t, run, "p6", result("p1", `"status": "ok", "score": 0.1`))
	res, broken, err := LoadResults(run, "gpt4score")
	if err != nil || len(res) != 1 || *res["sd/p1-s0"].Score != 0.73 {
		t.Fatalf("%+v, %v", res, err)
	}
	want := []string{
		"eval/gpt4score/sd/p2-s0.json: score 5, want a number from 0 to 1",
		"eval/gpt4score/sd/p3-s0.json: score -0.5, want a number from 0 to 1",
		"eval/gpt4score/sd/p4-s0.json: status ok without a score",
		`eval/gpt4score/sd/p5-s0.json: status "great", want ok or failed`,
		"eval/gpt4score/sd/p6-s0.json: describes the item sd/p1-s0, not the one its name says",
	}
	if strings.Join(broken, "\n") != strings.Join(want, "\n") {
		t.Fatalf("broken:\n%s\nwant:\n%s", strings.Join(broken, "\n"), strings.Join(want, "\n"))
	}
	s, err := Evaluate(context.Background(), run, fixedJudge(0.25), 2, nil)
	if err != nil || s.Generated != 5 || s.Skipped != 1 {
		t.Fatalf("%+v, %v", s, err)
	}
	// A judge that gives a score outside [0, 1] fails the item.
	os.RemoveAll(filepath.Join(run, "eval"))
	s, err = Evaluate(context.Background(), run, fixedJudge(5), 2, nil)
	if err != nil || s.Failed != 6 || !strings.Contains(s.Failures[0], "the judge gave the score 5, not a number from 0 to 1") {
		t.Fatalf("%+v, %v", s, err)
	}
}

type fixedJudge float64

func (fixedJudge) Name() string { return "gpt4score" }
func (j fixedJudge) Score(context.Context, string, []byte) (judge.Answer, error) {
	s := float64(j)
	return judge.Answer{Score: &s}, nil
}

// blockingJudge waits for its context, as a request in flight does.
type blockingJudge struct{ started chan<- struct{} }

func (blockingJudge) Name() string { return "gpt4score" }
func (j blockingJudge) Score(ctx context.Context, _ string, _ []byte) (judge.Answer, error) {
	j.started <- struct{}{}
	<-ctx.Done()
	return judge.Answer{}, fmt.Errorf("judge: request: %w", ctx.Err())
}

// The requests an interrupt stops are not results: nothing is written for
// them, and they do not count as failed, so the next Evaluate judges them.
func TestEvaluateInterrupted(t *testing.T) {
	run := t.TempDir()
	Start(run, Run{PromptsSHA256: "p", Methods: []string{"sd"}, Seeds: 1})
	for _, id := range []string{"p1", "p2", "p3"} {
		writeItem(t, run, id)
	}
	started := make(chan struct{}, 3) // one per item: none waits to send
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; <-started; cancel() }()
	s, err := Evaluate(ctx, run, blockingJudge{started}, 2, nil)
	if !errors.Is(err, context.Canceled) || s.Failed != 0 || s.Generated != 0 {
		t.Fatalf("%+v, %v", s, err)
	}
	if res, broken, _ := LoadResults(run, "gpt4score"); len(res)+len(broken) != 0 {
		t.Fatalf("results written: %+v %v", res, broken)
	}
	if s, err := Evaluate(context.Background(), run, fixedJudge(0.5), 2, nil); err != nil || s.Generated != 3 {
		t.Fatalf("next eval: %+v, %v", s, err)
	}
}

// Merge names everything of a shard it leaves out: a broken item (an empty
// image), a sidecar that is a named pipe, and an image without a sidecar,
// empty or not.
func TestMergeSaysWhatItLeavesOut(t *testing.T) {
	shard, out := t.TempDir(), t.TempDir()
	Start(shard, Run{PromptsSHA256: "p", Methods: []string{"sd"}, Seeds: 1})
	writeItem(t, shard, "p1")
	writeItem(t, shard, "p2")
	os.WriteFile(filepath.Join(shard, "images/sd/p2-s0.png"), nil, 0o644)
	writeItem(t, shard, "p3")
	os.Remove(filepath.Join(shard, "images/sd/p3-s0.json"))
	mkfifo(t, filepath.Join(shard, "images/sd/p3-s0.json"))
	os.WriteFile(filepath.Join(shard, "images/sd/p4-s0.png"), nil, 0o644)
	os.WriteFile(filepath.Join(shard, "images/sd/p5-s0.png"), []byte("\x89PNG"), 0o644)
	var log strings.Builder
	var n Merged
	var err error
	within(t, "Merge", func() { n, err = Merge(out, []string{shard}, &log) })
	if err != nil || n.Items != 1 || n.Skipped != 4 {
		t.Fatalf("%+v, %v\n%s", n, err, log.String())
	}
	for _, want := range []string{
		"leaving out images/sd/p2-s0.json of " + shard + ": images/sd/p2-s0.png: size 0, sidecar says ",
		"leaving out images/sd/p3-s0.json of " + shard + ": images/sd/p3-s0.json: " + shard + "/images/sd/p3-s0.json is a named pipe (FIFO)",
		"leaving out images/sd/p4-s0.png of " + shard + ": no sidecar images/sd/p4-s0.json beside it: the item was not finished",
		"leaving out images/sd/p5-s0.png of " + shard + ": no sidecar images/sd/p5-s0.json beside it",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	for _, id := range []string{"p2", "p4", "p5"} {
		if _, err := os.Stat(filepath.Join(out, "images/sd", id+"-s0.png")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s's image was copied", id)
		}
	}
	finished(t, out, Item{Prompt: Prompt{ID: "p1"}, Method: "sd"})
}

// Prompt ids name files: one that cannot (a NUL, a control character, too
// long, "." or "..", a leading dot, which merge takes for a temporary file)
// is refused when the file loads, with its line and the id.
func TestLoadPromptsRefusesIDsThatCannotNameFiles(t *testing.T) {
	long := strings.Repeat("x", 201)
	for _, c := range []struct{ id, want string }{
		{`a\u0000b`, `p.jsonl:2: id "a\x00b" must not contain control characters such as '\x00'`},
		{`a\u0007b`, `p.jsonl:2: id "a\ab" must not contain control characters`},
		{`a\nb`, `p.jsonl:2: id "a\nb" must not contain control characters`},
		{long, `p.jsonl:2: id "` + long + `" is 201 bytes long, want at most 200`},
		{".", `p.jsonl:2: id "." must not start with a dot`},
		{"..", `p.jsonl:2: id ".." must not start with a dot`},
		{".p1", `p.jsonl:2: id ".p1" must not start with a dot`},
		{"a/b", `p.jsonl:2: id "a/b" must not contain slashes or spaces`},
	} {
		path := filepath.Join(t.TempDir(), "p.jsonl")
		os.WriteFile(path, []byte(`{"id": "ok", "prompt": "a cat"}`+"\n"+`{"id": "`+c.id+`", "prompt": "a dog"}`+"\n"), 0o644)
		if _, err := LoadPrompts(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.id, err, c.want)
		}
	}
	// A CSV record's line is where it starts: the first record's prompt spans two lines.
	path := filepath.Join(t.TempDir(), "p.csv")
	os.WriteFile(path, []byte("id,area,category,prompt\nok,a,c,\"a cat\non two lines\"\n..,a,c,a dog\n"), 0o644)
	if _, err := LoadPrompts(path); err == nil || !strings.Contains(err.Error(), `p.csv:4: id ".." must not start with a dot`) {
		t.Errorf("csv: %v", err)
	}
	ok := strings.Repeat("é", 100) // 200 bytes
	path = filepath.Join(t.TempDir(), "p.jsonl")
	os.WriteFile(path, []byte(`{"id": "`+ok+`", "prompt": "a cat"}`), 0o644)
	if _, err := LoadPrompts(path); err != nil {
		t.Errorf("an id of 200 bytes: %v", err)
	}
}

// A shard is two whole numbers, i below n, n at most MaxShards.
func TestParseShard(t *testing.T) {
	for s, want := range map[string]Shard{"0/1": {0, 1}, "7/8": {7, 8}, "9999/10000": {9999, 10000}} {
		if got, err := ParseShard(s); err != nil || got != want {
			t.Errorf("%s: %v, %v", s, got, err)
		}
	}
	for s, want := range map[string]string{
		"3/3":                     "shard 3 of 3, want 0 to 2",
		"0/10001":                 "10001 shards, want 1 to 10000",
		"0/0":                     "0 shards, want 1 to 10000",
		"+1/2":                    "want i/n, two whole numbers",
		"-0/1":                    "want i/n, two whole numbers",
		" 1/2":                    "want i/n, two whole numbers",
		"1":                       "want i/n, two whole numbers",
		"0/99999999999999999999":  "want i/n, two whole numbers",
		"1/2/3":                   "want i/n, two whole numbers",
		"0x1/2":                   "want i/n, two whole numbers",
		"9223372036854775807/1":   "shard 9223372036854775807 of 1",
		"0/9223372036854775807":   "9223372036854775807 shards, want 1 to 10000",
		"99999999999999999999/10": "want i/n, two whole numbers",
	} {
		// The error names the shard it refused; the command line names the flag.
		_, err := ParseShard(s)
		var se *ShardError
		if !errors.As(err, &se) || se.Shard != s || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("shard %q", s)) {
			t.Errorf("%q: %v, want a ShardError with %q", s, err, want)
		}
	}
}
