package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/rfbench"
)

// fakeScores are the ratings the fake judge gives, by prompt.
var fakeScores = map[string]int{"p1": 80, "p2": 40, "p3": 60}

// A whole benchmark on the tiny model: 3 prompts × 2 methods, planned by a
// fake LLM, judged by a fake vision model with both judges (one 429 and one
// malformed answer on the way), reported as HTML whose table has the right numbers.
func TestBenchEvalReport(t *testing.T) {
	dir := t.TempDir()
	prompts := filepath.Join(dir, "prompts.jsonl")
	os.WriteFile(prompts, []byte(`{"id": "p1", "area": "Realistic & Analytical", "category": "Scientific and empirical reasoning", "prompt": "a mouse hunting a lion"}
{"id": "p2", "area": "Creativity & Imagination", "category": "Role reversal or conflict", "prompt": "a cat chased by a mouse"}
{"id": "p3", "area": "Creativity & Imagination", "category": "Imaginative scenes", "prompt": "a whale flying over mountains"}
`), 0o644)
	planner := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer planner.Close()
	run := filepath.Join(dir, "run")
	args := []string{"bench", "--weights", fixtures.Path("models", "tiny-sd2"), "--prompts", prompts, "--methods", "sd,rfnet",
		"--seeds", "1", "--out", run, "--steps", "3", "--size", "64", "--llm-base-url", planner.BaseURL(), "--llm-api-key", "k",
		"--llm-cache", "", "--quiet"}
	if err := run_(args); err != nil {
		t.Fatal(err)
	}
	metas, broken, _ := rfbench.LoadMetas(run)
	if len(metas) != 6 || len(broken) != 0 {
		t.Fatalf("%d images, broken %v", len(metas), broken)
	}

	var mu sync.Mutex
	asked := map[string]int{}
	vision := fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply {
		if n == 0 {
			return fakeopenai.Reply{Status: 429} // retried
		}
		if len(r.Messages) == 2 {
			return fakeopenai.Reply{Content: "an animal in a landscape"}
		}
		turn := r.Messages[3].Text()
		for id, p := range map[string]string{"p1": "a mouse hunting a lion", "p2": "a cat chased by a mouse", "p3": "a whale flying over mountains"} {
			if strings.Contains(turn, `"`+p+`"`) {
				mu.Lock()
				asked[id]++
				first := asked[id] == 1
				mu.Unlock()
				if id == "p3" && first {
					return fakeopenai.Reply{Content: "What a lovely whale!"} // malformed: no score
				}
				return fakeopenai.Reply{Content: fmt.Sprintf("Sure. {\"score\": %d, \"explanation\": \"judged %s\"}", fakeScores[id], id)}
			}
		}
		return fakeopenai.Reply{Content: "no idea"}
	})
	defer vision.Close()
	eval := func(j string) error {
		return run_([]string{"eval", "--run", run, "--judge", j, "--llm-base-url", vision.BaseURL(), "--llm-api-key", "k",
			"--judge-cache", "", "--concurrency", "3", "--quiet", "--weights", fixtures.Path("models", "tiny-sd2")})
	}
	// The malformed answer fails one item: recorded as failed, not scored, and retried by the next eval.
	if err := eval("gpt4score"); err == nil || !strings.Contains(err.Error(), "1 items failed") {
		t.Fatalf("first eval: %v", err)
	}
	res, _, _ := rfbench.LoadResults(run, "gpt4score")
	failed := 0
	for _, r := range res {
		if r.Status == "failed" {
			failed++
			if r.Score != nil || !strings.Contains(r.Error, "no score") {
				t.Fatalf("failed item %+v", r)
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d failed items", failed)
	}
	for _, j := range []string{"gpt4score", "gpt4clip"} {
		if err := eval(j); err != nil {
			t.Fatalf("eval %s: %v", j, err)
		}
	}
	out := filepath.Join(dir, "report.html")
	if err := run_([]string{"report", "--run", run, "--out", out}); err != nil {
		t.Fatal(err)
	}
	cells := scoreCells(t, out)
	// R&A is p1 alone, C&I pools p2 and p3, Avg pools all three.
	want := map[string]float64{"ra": 0.8, "ci": 0.5, "avg": 0.6}
	for _, m := range []string{"sd", "rfnet"} {
		for col, v := range want {
			got := cells["gpt4score/"+m+"/"+col]
			if math.Abs(got-v) > 1e-9 {
				t.Errorf("gpt4score %s %s = %v, want %v", m, col, got, v)
			}
		}
		if c := cells["gpt4clip/"+m+"/avg"]; !(c >= 0 && c <= 1) {
			t.Errorf("gpt4clip %s avg = %v", m, c)
		}
	}
	if got := cells["gpt4score/rfnet/Role reversal or conflict"]; got != 0.4 {
		t.Errorf("subcategory cell %v", got)
	}
	page, _ := os.ReadFile(out)
	if !strings.Contains(string(page), `class="bbox"`) || !strings.Contains(string(page), "judged p1") || !strings.Contains(string(page), "data:image/jpeg;base64,") {
		t.Error("the report lacks plan boxes, explanations or embedded images")
	}
	screenshot(t, out)
}

// run_ runs the command line, as main does.
func run_(args []string) error { return run(args) }

// scoreCells reads the report's score tables: judge/method/column -> value.
func scoreCells(t *testing.T, path string) map[string]float64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := html.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	cells := map[string]float64{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "td" {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			if attr["data-judge"] != "" && n.FirstChild != nil {
				v, err := strconv.ParseFloat(strings.TrimSpace(n.FirstChild.Data), 64)
				if err == nil {
					cells[attr["data-judge"]+"/"+attr["data-method"]+"/"+attr["data-col"]] = v
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if len(cells) == 0 {
		t.Fatal("no score cells in the report")
	}
	return cells
}

// smallBench is a bench command line on the tiny model: two prompts (written
// to run + ".prompts.jsonl"), plain SD, 2 steps at 64², no LLM. Flags given in
// more come last, so they win.
func smallBench(t *testing.T, run string, more ...string) []string {
	t.Helper()
	prompts := run + ".prompts.jsonl"
	if err := os.WriteFile(prompts, []byte(`{"id": "p1", "area": "Realistic & Analytical", "category": "Scientific and empirical reasoning", "prompt": "a mouse hunting a lion"}
{"id": "p2", "area": "Creativity & Imagination", "category": "Role reversal or conflict", "prompt": "a cat chased by a mouse"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	return append([]string{"bench", "--weights", fixtures.Path("models", "tiny-sd2"), "--prompts", prompts, "--methods", "sd",
		"--out", run, "--steps", "2", "--size", "64", "--offline-planner", "--llm-cache", "", "--quiet"}, more...)
}

// stderrOf runs f with os.Stderr sent to a file and returns what f wrote there.
func stderrOf(t *testing.T, f func()) string {
	t.Helper()
	file, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	saved := os.Stderr
	os.Stderr = file
	defer func() { os.Stderr = saved }()
	f()
	out, _ := os.ReadFile(file.Name())
	return string(out)
}

// A broken item (image or sidecar) is skipped and listed by eval and report,
// never judged, and made again by the next bench, which says why.
func TestBenchRedoesBrokenItems(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, base)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	emptyImages := 0
	vision := fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply {
		if len(r.Messages) == 2 {
			if strings.Contains(string(r.Messages[1].Content), `"data:image/png;base64,"`) {
				mu.Lock()
				emptyImages++
				mu.Unlock()
			}
			return fakeopenai.Reply{Content: "an animal"}
		}
		return fakeopenai.Reply{Content: `{"score": 50, "explanation": "half"}`}
	})
	defer vision.Close()
	const img, meta = "images/sd/p1-s0.png", "images/sd/p1-s0.json"
	rewrite := func(path string, change func([]byte) []byte) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path, change(data), 0o644)
	}
	for _, c := range []struct {
		name   string
		damage func(run string)
		reason string // in every listing of the item
	}{
		{"truncated image", func(run string) {
			rewrite(filepath.Join(run, img), func(b []byte) []byte { return b[:len(b)/2] })
		}, img + ": size "},
		{"empty image", func(run string) {
			rewrite(filepath.Join(run, img), func([]byte) []byte { return nil })
		}, img + ": size 0, sidecar says "},
		{"garbage image", func(run string) {
			rewrite(filepath.Join(run, img), func(b []byte) []byte { return []byte(strings.Repeat("x", len(b))) })
		}, img + ": SHA-256 "},
		{"bit-flipped image", func(run string) {
			rewrite(filepath.Join(run, img), func(b []byte) []byte { b[len(b)/2] ^= 4; return b })
		}, img + ": SHA-256 "},
		{"missing image", func(run string) { os.Remove(filepath.Join(run, img)) }, img + ": missing"},
		{"broken sidecar", func(run string) {
			// Cut before a key: half the file could end inside a number
			// (where depends on the timings and on the checkout's path in
			// the sidecar), which the decoder reports otherwise.
			rewrite(filepath.Join(run, meta), func(b []byte) []byte { return b[:bytes.Index(b, []byte(`"seconds"`))] })
		}, meta + ": unexpected end of JSON input"},
		{"sidecar of an older version, truncated image", func(run string) {
			rewrite(filepath.Join(run, meta), olderSidecar)
			rewrite(filepath.Join(run, img), func(b []byte) []byte { return b[:len(b)-20] })
		}, img + ": does not decode"},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := filepath.Join(t.TempDir(), "run")
			if err := os.CopyFS(run, os.DirFS(base)); err != nil {
				t.Fatal(err)
			}
			c.damage(run)
			err := run_([]string{"eval", "--run", run, "--llm-base-url", vision.BaseURL(), "--llm-api-key", "k", "--judge-cache", "", "--quiet"})
			if err == nil || !strings.Contains(err.Error(), "1 items are broken") || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("eval: %v", err)
			}
			res, _, _ := rfbench.LoadResults(run, "gpt4score")
			if _, judged := res["sd/p1-s0"]; judged || res["sd/p2-s0"].Status != "ok" || emptyImages != 0 {
				t.Fatalf("results %+v, %d empty images sent", res, emptyImages)
			}
			page := filepath.Join(run, "report.html")
			if err := run_([]string{"report", "--run", run, "--out", page}); err != nil {
				t.Fatal(err)
			}
			if html, _ := os.ReadFile(page); !strings.Contains(string(html), `<ul id="skipped"><li><code>`+c.reason) {
				t.Fatal("the report does not list the broken item")
			}
			log := stderrOf(t, func() { err = run_(smallBench(t, run)) })
			if err != nil || !strings.Contains(log, c.reason) || !strings.Contains(log, ": generating it again") {
				t.Fatalf("bench again: %v\n%s", err, log)
			}
			if metas, broken, _ := rfbench.LoadMetas(run); len(metas) != 2 || len(broken) != 0 {
				t.Fatalf("after bench: %d items, broken %v", len(metas), broken)
			}
		})
	}
}

// olderSidecar turns a sidecar into one of a version that recorded no image
// size and hash.
func olderSidecar(b []byte) []byte {
	var m map[string]any
	json.Unmarshal(b, &m)
	delete(m, "image_bytes")
	delete(m, "image_sha256")
	b, _ = json.Marshal(m)
	return b
}

// A run folder of an earlier version (sidecars and results without the
// image's size and hash) is not made or judged again: eval takes its results
// for the images there, report shows them, and bench records the sizes and
// hashes into the sidecars.
func TestBenchUpgradesEarlierRun(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, run)); err != nil {
		t.Fatal(err)
	}
	vision := halfScoreJudge()
	defer vision.Close()
	eval := func() (string, error) {
		var err error
		log := stderrOf(t, func() {
			err = run_([]string{"eval", "--run", run, "--llm-base-url", vision.BaseURL(), "--llm-api-key", "k", "--judge-cache", "", "--quiet"})
		})
		return log, err
	}
	if _, err := eval(); err != nil {
		t.Fatal(err)
	}
	for _, glob := range []string{"images/sd/*.json", "eval/gpt4score/sd/*.json"} {
		files, _ := filepath.Glob(filepath.Join(run, glob))
		for _, f := range files {
			raw, _ := os.ReadFile(f)
			os.WriteFile(f, olderSidecar(raw), 0o644)
		}
	}
	requests := len(vision.Requests())
	if log, err := eval(); err != nil || !strings.Contains(log, "0 judged, 2 already judged, 0 failed") || len(vision.Requests()) != requests {
		t.Fatalf("eval of the earlier run: %v\n%s", err, log)
	}
	page := filepath.Join(run, "report.html")
	if err := run_([]string{"report", "--run", run, "--out", page}); err != nil {
		t.Fatal(err)
	}
	if html, _ := os.ReadFile(page); strings.Contains(string(html), `<ul id="skipped">`) {
		t.Fatal("the report skips items of the earlier run")
	}
	var err error
	log := stderrOf(t, func() { err = run_(smallBench(t, run)) })
	if err != nil || !strings.Contains(log, "recorded the size and hash of 2 items of an earlier version") || !strings.Contains(log, "0 generated, 2 already done") {
		t.Fatalf("bench: %v\n%s", err, log)
	}
	raw, _ := os.ReadFile(filepath.Join(run, "images/sd/p1-s0.json"))
	var m rfbench.Meta
	if json.Unmarshal(raw, &m); m.ImageBytes == 0 || m.ImageSHA256 == "" || !m.HashAdded {
		t.Fatalf("sidecar after bench: %s", raw)
	}
	if log, err := eval(); err != nil || !strings.Contains(log, "0 judged, 2 already judged, 0 failed") {
		t.Fatalf("eval after bench: %v\n%s", err, log)
	}
}

// A result judged an earlier image of an item (one bench has since made
// again) is not the item's result: report leaves it out and lists it, and
// eval judges the item again.
func TestEvalRejudgesNewImage(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, run)); err != nil {
		t.Fatal(err)
	}
	vision := halfScoreJudge()
	defer vision.Close()
	eval := func() error {
		return run_([]string{"eval", "--run", run, "--llm-base-url", vision.BaseURL(), "--llm-api-key", "k", "--judge-cache", "", "--quiet"})
	}
	if err := eval(); err != nil {
		t.Fatal(err)
	}
	// A new image with a sidecar that matches it, as a regeneration leaves.
	img, meta := filepath.Join(run, "images/sd/p1-s0.png"), filepath.Join(run, "images/sd/p1-s0.json")
	png, _ := os.ReadFile(img)
	png[len(png)/2] ^= 4
	os.WriteFile(img, png, 0o644)
	var m rfbench.Meta
	raw, _ := os.ReadFile(meta)
	json.Unmarshal(raw, &m)
	sum := sha256.Sum256(png)
	m.ImageSHA256 = hex.EncodeToString(sum[:])
	raw, _ = json.Marshal(m)
	os.WriteFile(meta, raw, 0o644)

	page := filepath.Join(run, "report.html")
	if err := run_([]string{"report", "--run", run, "--out", page}); err != nil {
		t.Fatal(err)
	}
	if html, _ := os.ReadFile(page); !strings.Contains(string(html), "eval/gpt4score/sd/p1-s0.json: judged an earlier image") {
		t.Fatal("the report does not list the stale result")
	}
	var err error
	log := stderrOf(t, func() { err = eval() })
	if err != nil || !strings.Contains(log, "1 judged, 1 already judged, 0 failed") {
		t.Fatalf("eval again: %v\n%s", err, log)
	}
	if res, _, _ := rfbench.LoadResults(run, "gpt4score"); res["sd/p1-s0"].ImageSHA256 != m.ImageSHA256 {
		t.Fatalf("result %+v", res["sd/p1-s0"])
	}
}

// Every flag is checked before the model loads (the weights here do not
// exist), and the error names the flag.
func TestBenchEvalFlagErrors(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	bench := func(more ...string) []string {
		return smallBench(t, run, append([]string{"--weights", "/nonexistent"}, more...)...)
	}
	eval := func(more ...string) []string {
		return append([]string{"eval", "--run", run, "--weights", "/nonexistent"}, more...)
	}
	badConfig := filepath.Join(t.TempDir(), "rfnet.json")
	os.WriteFile(badConfig, []byte(`{"width": 500}`), 0o644)
	afile := filepath.Join(t.TempDir(), "afile")
	os.WriteFile(afile, []byte("x"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{bench("--size", "-64"), "--size -64: want a multiple of 8"},
		{bench("--rfnet-config", badConfig), "width 500: want a multiple of 8"},
		{bench("--size", "0"), "--size 0: want a multiple of 8"},
		{bench("--size", "100"), "--size 100: want a multiple of 8"},
		{bench("--size", "2097152"), "--size 2097152: want a multiple of 8 from 8 to"},
		{bench("--max-objects", "0"), "--max-objects 0: want 1 or more"},
		{bench("--steps", "-2"), "--steps -2: want at least 1"},
		{bench("--steps", "0"), "--steps 0: want at least 1"},
		{bench("--limit", "-1"), "--limit -1: want"},
		{bench("--seeds", "0"), "--seeds 0: want at least 1"},
		{bench("--llm-timeout", "0s"), "--llm-timeout 0s: want a positive duration"},
		{eval("--concurrency", "0"), "--concurrency 0: want at least 1"},
		{eval("--llm-timeout", "-1s"), "--llm-timeout -1s: want a positive duration"},
		{eval("--llm-retries", "-1"), "--llm-retries -1: want 0 or more"},
		{eval("--judge", "gpt5score"), `--judge "gpt5score"`},
		// Values that would list billions of items or start a billion goroutines.
		{bench("--seeds", "9223372036854775807"), "bench: --seeds 9223372036854775807: want at most 1000"},
		{bench("--seeds", "1001"), "bench: --seeds 1001: want at most 1000"},
		{eval("--concurrency", "1000000000"), "eval: --concurrency 1000000000: want at most 256"},
		{bench("--limit", "9223372036854775808"), `invalid argument "9223372036854775808" for "--limit" flag`},
		{bench("--shard", "0/99999"), `--shard "0/99999": 99999 shards, want 1 to 10000`},
		{bench("--shard", "-1/2"), `--shard "-1/2": want i/n, two whole numbers`},
		{bench("--shard", "0/99999999999999999999"), `--shard "0/99999999999999999999": want i/n, two whole numbers`},
		// A file where a folder goes.
		{bench("--out", afile), "bench: --out " + afile + " is a file, not a run folder"},
		{[]string{"bench", "merge", "--out", afile, run}, "bench merge: --out " + afile + " is a file, not a run folder"},
		{eval("--run", afile), "eval: --run " + afile + " is a file, not a run folder"},
		{eval("--judge-cache", afile), "eval: --judge-cache " + afile + " is a file, not a folder"},
		{[]string{"report", "--run", afile}, "report: --run " + afile + " is a file, not a run folder"},
	} {
		t.Run(strings.Join(c.args[len(c.args)-2:], " "), func(t *testing.T) {
			if err := run_(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error with %q", err, c.want)
			}
		})
	}
}

// --llm-timeout and --llm-retries reach the judge's requests: against a
// server that never answers, eval returns and records the items as failed.
func TestEvalJudgeTimeout(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, run)); err != nil {
		t.Fatal(err)
	}
	stalled := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Delay: time.Hour} })
	defer stalled.Close()
	var err error
	log := stderrOf(t, func() {
		err = run_([]string{"eval", "--run", run, "--llm-base-url", stalled.BaseURL(), "--llm-api-key", "k", "--judge-cache", "",
			"--llm-timeout", "100ms", "--llm-retries", "1", "--concurrency", "2", "--quiet"})
	})
	if err == nil || !strings.Contains(err.Error(), "2 items failed") {
		t.Fatalf("eval: %v", err)
	}
	// The summary gives the first failure's reason.
	if !regexp.MustCompile(`0 judged, 0 already judged, 2 failed \(the first: sd/p[12]-s0: .*after 2 tries`).MatchString(log) {
		t.Fatalf("summary:\n%s", log)
	}
	res, _, _ := rfbench.LoadResults(run, "gpt4score")
	for _, key := range []string{"sd/p1-s0", "sd/p2-s0"} {
		if r := res[key]; r.Status != "failed" || r.Score != nil || !strings.Contains(r.Error, "after 2 tries") {
			t.Errorf("%s: %+v", key, r)
		}
	}
	if n := len(stalled.Requests()); n != 4 {
		t.Errorf("%d requests, want 2 items × 2 tries", n)
	}
}

// A bench with other settings than a live process in the same folder is
// refused before its model loads, naming the holder and what differs.
func TestBenchLockRefusesOtherSettings(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	args := smallBench(t, run, "--weights", "/nonexistent", "--steps", "3")
	prompts, err := rfbench.LoadPrompts(run + ".prompts.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	held := rfnet.Default()
	held.Steps, held.Width, held.Height = 2, 64, 64
	release, err := rfbench.Lock(run, rfbench.Settings{PromptsSHA256: rfbench.PromptsHash(prompts), Config: held}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	host, _ := os.Hostname()
	err = run_(args)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in use by pid %d on %s since ", os.Getpid(), host)) ||
		!strings.Contains(err.Error(), "with other settings (num_inference_steps 3 here, 2 there)") || !strings.Contains(err.Error(), "--out "+run) {
		t.Fatalf("%v", err)
	}
	if locks, _ := os.ReadDir(filepath.Join(run, "locks")); len(locks) != 1 {
		t.Fatalf("%d lock files, want the holder's alone", len(locks))
	}
}

// A folder whose bench.json describes other settings is refused before the
// model loads (the weights here do not exist).
func TestBenchRefusesOtherRunBeforeLoading(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, run)); err != nil {
		t.Fatal(err)
	}
	err := run_(smallBench(t, run, "--weights", "/nonexistent", "--steps", "3"))
	if err == nil || !strings.Contains(err.Error(), "bench.json describes another run (num_inference_steps 3 here, 2 there)") || !strings.Contains(err.Error(), "--out "+run) {
		t.Fatalf("%v", err)
	}
}

// Two names of one checkpoint are one setting: a bench with the same model
// under another --weights name shares the folder with a live process. Other
// weights are refused once the model's hash is known, before any image.
func TestBenchWeightsNamesAndHash(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	alias := filepath.Join(dir, "sd21-base")
	if err := os.Symlink(fixtures.Path("models", "tiny-sd2"), alias); err != nil {
		t.Fatal(err)
	}
	if err := run_(smallBench(t, run, "--seeds", "2")); err != nil {
		t.Fatal(err)
	}
	prompts, err := rfbench.LoadPrompts(run + ".prompts.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := rfnet.Default()
	cfg.Steps, cfg.Width, cfg.Height = 2, 64, 64
	release, err := rfbench.Lock(run, rfbench.Settings{PromptsSHA256: rfbench.PromptsHash(prompts), Config: cfg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	log := stderrOf(t, func() { err = run_(smallBench(t, run, "--weights", alias, "--seeds", "3")) })
	if err != nil || !strings.Contains(log, "(same settings)") || !strings.Contains(log, "2 generated, 4 already done") {
		t.Fatalf("the same model by another name: %v\n%s", err, log)
	}
	// tiny-sd2-v has tiny-sd2's weight files and a v-prediction scheduler.
	for _, c := range []struct{ model, want string }{
		{"tiny-sd1", "describes another run (the model's SHA-256 "},
		{"tiny-sd2-v", "describes another run (the model's prediction v_prediction here, epsilon there)"},
	} {
		log = stderrOf(t, func() { err = run_(smallBench(t, run, "--weights", fixtures.Path("models", c.model))) })
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(log, "generated") {
			t.Fatalf("%s: %v\n%s", c.model, err, log)
		}
	}
}

// Settings the model cannot run (more steps than the scheduler's training
// schedule allows) fail once after the model loads, not once per item.
func TestBenchValidatesAgainstModel(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	var err error
	log := stderrOf(t, func() { err = run_(smallBench(t, run, "--steps", "1000")) })
	if err == nil || !strings.HasPrefix(err.Error(), "bench: ") || strings.Contains(log, "failed") {
		t.Fatalf("%v\n%s", err, log)
	}
	if metas, broken, _ := rfbench.LoadMetas(run); len(metas)+len(broken) != 0 {
		t.Fatalf("%d items made", len(metas)+len(broken))
	}
}

// A bench that ends with items another process holds fails, naming the
// claims and their holders and saying what becomes of them; the items it
// could make, it makes.
func TestBenchBusyItemsFail(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	claim := filepath.Join(run, "images", "sd", "p1-s0.claim")
	os.MkdirAll(filepath.Dir(claim), 0o755)
	os.WriteFile(claim, []byte(`{"pid": 7, "host": "elsewhere", "since": "2025-03-04T05:06:07Z"}`), 0o644)
	err := run_(smallBench(t, run))
	for _, want := range []string{"1 items are not finished", "images/sd/p1-s0.claim (pid 7 on elsewhere since 2025-03-04 05:06:07)",
		"those processes finish them", "stale once not refreshed for 5m0s", "running the same command again makes them"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v, want an error with %q", err, want)
		}
	}
	if metas, _, _ := rfbench.LoadMetas(run); len(metas) != 1 || metas[0].ID != "p2" {
		t.Fatalf("items made: %+v", metas)
	}
}

// TestBenchHelperProcess is the command line in a process of its own, for
// the tests that need one; it runs only when they start it.
func TestBenchHelperProcess(t *testing.T) {
	args := os.Getenv("RFNET_BENCH_HELPER_ARGS")
	if args == "" {
		t.Skip("started by the tests that call benchProcess")
	}
	if err := run_(strings.Split(args, "\n")); err != nil {
		fmt.Fprintln(os.Stderr, "rfnet-native:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func benchProcess(t *testing.T, args []string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchHelperProcess$")
	cmd.Env = append(os.Environ(), "RFNET_BENCH_HELPER_ARGS="+strings.Join(args, "\n"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// SIGTERM (a pod being stopped) ends a bench after its current item, with
// its lock and claims removed and nothing half-written.
func TestBenchReleasesLockOnSignal(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	cmd, stderr := benchProcess(t, smallBench(t, run, "--seeds", "50"))
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if metas, _, _ := rfbench.LoadMetas(run); len(metas) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no image after 2 minutes:\n%s", stderr)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err == nil || !strings.Contains(stderr.String(), "bench: interrupted; ") || strings.Contains(stderr.String(), "context canceled") {
		t.Fatalf("bench was not interrupted (%v):\n%s", err, stderr)
	}
	leftovers, _ := filepath.Glob(filepath.Join(run, "locks", "*"))
	claims, _ := filepath.Glob(filepath.Join(run, "images", "sd", "*.claim"))
	if len(leftovers)+len(claims) != 0 {
		t.Fatalf("left behind: %v %v", leftovers, claims)
	}
	if _, broken, _ := rfbench.LoadMetas(run); len(broken) != 0 {
		t.Fatalf("broken items: %v", broken)
	}
}

// SIGTERM while the model downloads stops the download at once, and the
// lock is released.
func TestBenchSignalDuringDownload(t *testing.T) {
	s, _ := tinyHub(t)
	// The weights stall, and the download's own stall timeout would take
	// ten minutes to notice: only the signal can stop it in time.
	s.StallAfter = 1000
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "600")
	run := filepath.Join(t.TempDir(), "run")
	cmd, stderr := benchProcess(t, smallBench(t, run, "--weights", "org/tiny-sd1"))
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		downloading := false
		for _, r := range s.Requests() {
			downloading = downloading || strings.HasPrefix(r, "GET /lfs/")
		}
		if locks, _ := filepath.Glob(filepath.Join(run, "locks", "*.json")); downloading && len(locks) == 1 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no download after 2 minutes:\n%s", stderr)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(stderr.String(), "bench: interrupted while loading the model") || strings.Contains(stderr.String(), "context canceled") {
			t.Fatalf("bench was not interrupted (%v):\n%s", err, stderr)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("bench went on downloading after SIGTERM:\n%s", stderr)
	}
	if locks, _ := filepath.Glob(filepath.Join(run, "locks", "*")); len(locks) != 0 {
		t.Fatalf("locks left: %v", locks)
	}
}

// Two bench processes with the same settings in one folder make every item
// exactly once between them. The one that ends first may fail, saying that
// items of the other are not finished yet.
func TestBenchProcessesShareFolder(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	args := smallBench(t, run, "--seeds", "4")
	a, aErr := benchProcess(t, args)
	b, bErr := benchProcess(t, args)
	generated := 0
	for i, p := range []*exec.Cmd{a, b} {
		stderr := []*strings.Builder{aErr, bErr}[i]
		if err := p.Wait(); err != nil && !strings.Contains(stderr.String(), "are not finished: other processes hold their claims") {
			t.Fatalf("process %d: %v\n%s", i, err, stderr)
		}
		m := regexp.MustCompile(`: (\d+) generated, `).FindStringSubmatch(stderr.String())
		if m == nil {
			t.Fatalf("process %d printed no summary:\n%s", i, stderr)
		}
		n, _ := strconv.Atoi(m[1])
		generated += n
	}
	if metas, broken, _ := rfbench.LoadMetas(run); generated != 8 || len(metas) != 8 || len(broken) != 0 {
		t.Fatalf("%d generations, %d items, broken %v", generated, len(metas), broken)
	}
}

// A sidecar that describes another image than the item bench resumes (here
// edited to another seed) is broken: bench names the field and makes the
// item again, and the summary says so.
func TestBenchRedoesSidecarOfAnotherItem(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, run)); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(run, "images/sd/p1-s0.json")
	var m map[string]any
	raw, _ := os.ReadFile(meta)
	json.Unmarshal(raw, &m)
	m["seed"] = 5
	raw, _ = json.Marshal(m)
	os.WriteFile(meta, raw, 0o644)
	var err error
	log := stderrOf(t, func() { err = run_(smallBench(t, run)) })
	for _, want := range []string{"images/sd/p1-s0.json: seed 5, this run's item has 0: generating it again",
		"1 generated (1 of them broken and made again), 1 already done, 0 failed"} {
		if err != nil || !strings.Contains(log, want) {
			t.Fatalf("%v, want %q in\n%s", err, want, log)
		}
	}
	if metas, broken, _ := rfbench.LoadMetas(run); len(metas) != 2 || len(broken) != 0 {
		t.Fatalf("%d items, broken %v", len(metas), broken)
	}
}

// Failures that running again cannot fix are told apart from those it may:
// the summary gives the first reason, and the error does not advise a rerun
// alone. Here a folder stands where an image goes, and then images/sd is a
// file, so that no claim can be made.
func TestBenchFailureReasons(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, run)); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(run, "images/sd/p1-s0.png")
	os.Remove(img)
	os.Mkdir(img, 0o755)
	var err error
	log := stderrOf(t, func() { err = run_(smallBench(t, run)) })
	if want := "0 generated, 1 already done, 1 failed (1 of them broken and not made again; the first: sd/p1-s0: images/sd/p1-s0.png is a folder, where the item's file goes: move it away)"; !strings.Contains(log, want) {
		t.Fatalf("summary lacks %q:\n%s", want, log)
	}
	if err == nil || strings.Contains(err.Error(), "run the same command again to retry") ||
		!strings.Contains(err.Error(), "1 items failed in a way that running again does not fix as things stand (the first: sd/p1-s0: images/sd/p1-s0.png is a folder") {
		t.Fatalf("%v", err)
	}

	run = filepath.Join(t.TempDir(), "run")
	os.MkdirAll(filepath.Join(run, "images"), 0o755)
	os.WriteFile(filepath.Join(run, "images", "sd"), []byte("x"), 0o644)
	log = stderrOf(t, func() { err = run_(smallBench(t, run)) })
	if err == nil || !strings.Contains(log, "0 generated, 0 already done, 2 failed (the first: sd/p1-s0: ") ||
		!strings.Contains(err.Error(), "2 items failed in a way that running again does not fix as things stand (the first: sd/p1-s0: ") ||
		!strings.Contains(err.Error(), "not a directory") || strings.Contains(err.Error(), "retry") {
		t.Fatalf("%v\n%s", err, log)
	}
}

// Plain SD needs no planner: bench --methods sd does not warn that no LLM is
// configured.
func TestBenchSDNeedsNoLLM(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	run := filepath.Join(t.TempDir(), "run")
	var args []string
	for _, a := range smallBench(t, run) {
		if a != "--offline-planner" {
			args = append(args, a)
		}
	}
	var err error
	log := stderrOf(t, func() { err = run_(args) })
	if err != nil || strings.Contains(log, "no LLM configured") || !strings.Contains(log, "2 generated") {
		t.Fatalf("%v\n%s", err, log)
	}
}

// --limit past the number of prompts takes them all, even the largest int.
func TestBenchLimitLargest(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	var err error
	log := stderrOf(t, func() { err = run_(smallBench(t, run, "--limit", "9223372036854775807")) })
	if err != nil || !strings.Contains(log, "2 generated") {
		t.Fatalf("%v\n%s", err, log)
	}
}

// SIGTERM during eval stops the requests in flight without recording them:
// no result is written for them (the next eval judges them), and eval says it
// was interrupted.
func TestEvalInterrupted(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, run)); err != nil {
		t.Fatal(err)
	}
	stalled := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Delay: time.Hour} })
	defer stalled.Close()
	cmd, stderr := benchProcess(t, []string{"eval", "--run", run, "--llm-base-url", stalled.BaseURL(), "--llm-api-key", "k",
		"--judge-cache", "", "--concurrency", "2", "--quiet"})
	for deadline := time.Now().Add(2 * time.Minute); len(stalled.Requests()) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no requests after 2 minutes:\n%s", stderr)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if err == nil || !strings.Contains(stderr.String(), "0 judged, 0 already judged, 0 failed") ||
		!strings.Contains(stderr.String(), "eval: interrupted; ") || strings.Contains(stderr.String(), "context canceled") {
		t.Fatalf("%v:\n%s", err, stderr)
	}
	if res, broken, _ := rfbench.LoadResults(run, "gpt4score"); len(res)+len(broken) != 0 {
		t.Fatalf("results written: %+v %v", res, broken)
	}
}

// Named pipes in a run folder (a sidecar, a judge result) do not block eval
// or report: both list them and finish.
func TestEvalReportNamedPipes(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, run)); err != nil {
		t.Fatal(err)
	}
	sidecar := filepath.Join(run, "images/sd/p1-s0.json")
	result := filepath.Join(run, "eval/gpt4score/sd/p2-s0.json")
	os.Remove(sidecar)
	os.MkdirAll(filepath.Dir(result), 0o755)
	for _, p := range []string{sidecar, result} {
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Skip("no mkfifo here:", err)
		}
	}
	vision := halfScoreJudge()
	defer vision.Close()
	done := make(chan string, 1)
	go func() {
		var said []string
		err := run_([]string{"eval", "--run", run, "--llm-base-url", vision.BaseURL(), "--llm-api-key", "k", "--judge-cache", "", "--quiet"})
		said = append(said, fmt.Sprint(err))
		page := filepath.Join(t.TempDir(), "report.html")
		err = run_([]string{"report", "--run", run, "--out", page})
		html, _ := os.ReadFile(page)
		done <- strings.Join(append(said, fmt.Sprint(err), string(html)), "\n")
	}()
	select {
	case said := <-done:
		for _, want := range []string{"1 items are broken", "images/sd/p1-s0.json: " + sidecar + " is a named pipe (FIFO)",
			"eval/gpt4score/sd/p2-s0.json: " + result + " is a named pipe (FIFO)"} {
			if !strings.Contains(said, want) {
				t.Errorf("nothing says %q:\n%s", want, said)
			}
		}
	case <-time.After(time.Minute):
		for _, p := range []string{sidecar, result} {
			if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
		}
		t.Fatal("eval or report blocked on a named pipe")
	}
}

// bench merge names what it leaves out of a shard, an empty image without a
// sidecar included, and counts it in its summary.
func TestBenchMergeSaysWhatItLeavesOut(t *testing.T) {
	shard := filepath.Join(t.TempDir(), "run")
	if err := run_(smallBench(t, shard)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(shard, "images/sd/p9-s0.png"), nil, 0o644)
	out := filepath.Join(t.TempDir(), "merged")
	var err error
	log := stderrOf(t, func() { err = run_([]string{"bench", "merge", "--out", out, shard}) })
	if err != nil || !strings.Contains(log, "leaving out images/sd/p9-s0.png of "+shard+": no sidecar images/sd/p9-s0.json beside it") ||
		!strings.Contains(log, "2 items, 0 plans and 0 judge results copied into "+out+", 1 files left out (each named above)") {
		t.Fatalf("%v\n%s", err, log)
	}
}

// halfScoreJudge is a vision endpoint that describes every image as "an
// animal" and rates it 50.
func halfScoreJudge() *fakeopenai.Server {
	return fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply {
		if len(r.Messages) == 2 {
			return fakeopenai.Reply{Content: "an animal"}
		}
		return fakeopenai.Reply{Content: `{"score": 50, "explanation": "half"}`}
	})
}

// bench --list-methods prints every method with what it turns off and exits
// before it checks anything else or loads a model (there is none here).
func TestBenchListMethods(t *testing.T) {
	out := captureStdout(t, func() error { return run_([]string{"bench", "--list-methods"}) })
	for _, want := range []string{"sd  ", "rfnet-saa-only  ", "rfnet-reference-only  ", "the suppression constraint"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != len(rfbench.MethodNames())+1 {
		t.Errorf("%d lines, want a header and one per method:\n%s", n, out)
	}
}

// bench --keep-artifacts on the tiny model with a fake LLM: each RFNet item,
// the two single-part ablations here, keeps its plan, masks and trace in
// images/<method>/<id>-s<seed>/ with the configuration of its method; the sd
// item keeps nothing. The same command again finds every item done, and
// makes again an item that lost a kept file.
func TestBenchKeepArtifacts(t *testing.T) {
	planner := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: fakePlan} })
	defer planner.Close()
	run := filepath.Join(t.TempDir(), "run")
	var args []string
	for _, a := range smallBench(t, run, "--methods", "sd,rfnet-saa-only,rfnet-reference-only", "--limit", "1", "--keep-artifacts",
		"--llm-base-url", planner.BaseURL(), "--llm-api-key", "k") {
		if a != "--offline-planner" {
			args = append(args, a)
		}
	}
	if err := run_(args); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run, "images", "sd", "p1-s0")); err == nil {
		t.Error("the sd item keeps a folder; it has nothing to keep")
	}
	for method, want := range map[string]struct{ saa, reference, suppression bool }{
		"rfnet-saa-only":       {true, false, false},
		"rfnet-reference-only": {false, true, false},
	} {
		dir := filepath.Join(run, "images", method, "p1-s0")
		checkArtifacts(t, dir, []string{"a lion", "a mouse"}, want.saa) // what an rfnet --out-dir holds
		var info struct{ Config rfnet.Config }
		raw, _ := os.ReadFile(filepath.Join(dir, "run.json"))
		if err := json.Unmarshal(raw, &info); err != nil {
			t.Fatalf("%s: run.json: %v", method, err)
		}
		if c := info.Config; c.SAA != want.saa || c.ReferenceConstraint != want.reference || c.Suppression != want.suppression {
			t.Errorf("%s ran with SAA %v, reference %v, suppression %v; want %+v", method, c.SAA, c.ReferenceConstraint, c.Suppression, want)
		}
	}
	var err error
	log := stderrOf(t, func() { err = run_(args) })
	if err != nil || !strings.Contains(log, "0 generated, 3 already done") {
		t.Fatalf("the same command again: %v\n%s", err, log)
	}
	os.Remove(filepath.Join(run, "images", "rfnet-saa-only", "p1-s0", "trace.jsonl"))
	log = stderrOf(t, func() { err = run_(args) })
	if err != nil || !strings.Contains(log, "trace.jsonl: missing") || !strings.Contains(log, "1 generated (1 of them broken and made again)") {
		t.Fatalf("after a kept file went: %v\n%s", err, log)
	}
	if _, err := os.Stat(filepath.Join(run, "images", "rfnet-saa-only", "p1-s0", "trace.jsonl")); err != nil {
		t.Errorf("made again, the item keeps no trace: %v", err)
	}
}

// An RFNet method on a v-prediction model fails once, before any item, with
// the reason; plain SD runs on it.
func TestBenchRefusesRFNetOnV(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	var err error
	log := stderrOf(t, func() {
		err = run_(smallBench(t, run, "--weights", fixtures.Path("models", "tiny-sd2-v"), "--methods", "sd,rfnet"))
	})
	if err == nil || !strings.Contains(err.Error(), "supports epsilon models only") || !strings.Contains(err.Error(), "--methods sd") || strings.Contains(log, "generated") {
		t.Fatalf("%v\n%s", err, log)
	}
}
