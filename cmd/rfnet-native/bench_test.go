package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/internal/fixtures"
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
	metas, _ := rfbench.LoadMetas(run)
	if len(metas) != 6 {
		t.Fatalf("%d images", len(metas))
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
	res, _ := rfbench.LoadResults(run, "gpt4score")
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

// screenshot renders the report in headless Chromium (Debian's chromium,
// which .ci/run installs) and checks that a PNG came out.
func screenshot(t *testing.T, page string) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Log("chromium is not installed here; .ci/run installs it and renders the report")
		if os.Getenv("RFNET_REQUIRE_CHROMIUM") != "" {
			t.Fatal("RFNET_REQUIRE_CHROMIUM is set but chromium is missing")
		}
		return
	}
	png := filepath.Join(t.TempDir(), "report.png")
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--window-size=1400,1800", "--screenshot="+png, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot %v %v", fi, err)
	}
}
