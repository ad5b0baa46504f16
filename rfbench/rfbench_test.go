package rfbench

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/tensor"
)

func TestDefaultPrompts(t *testing.T) {
	ps := DefaultPrompts()
	if len(ps) < 230 {
		t.Fatalf("%d prompts, want at least 230", len(ps))
	}
	perCat := map[string]int{}
	areas := map[string]string{}
	seen := map[string]bool{}
	for _, p := range ps {
		perCat[p.Category]++
		if a, ok := areas[p.Category]; ok && a != p.Area {
			t.Fatalf("%s is in two areas", p.Category)
		}
		areas[p.Category] = p.Area
		if seen[strings.ToLower(p.Prompt)] {
			t.Fatalf("%q twice", p.Prompt)
		}
		seen[strings.ToLower(p.Prompt)] = true
	}
	if len(perCat) != 9 {
		t.Fatalf("%d subcategories: %v", len(perCat), perCat)
	}
	counts := map[string]int{}
	for cat, n := range perCat {
		if n < 20 {
			t.Errorf("%s has %d prompts, want at least 20", cat, n)
		}
		counts[areas[cat]]++
	}
	if counts[RealisticAnalytical] != 4 || counts[CreativeImaginative] != 5 {
		t.Fatalf("subcategories per area: %v", counts)
	}
}

// A byte order mark, which spreadsheets and Windows editors write, is not part
// of the first id or column name.
func TestLoadPromptsBOM(t *testing.T) {
	for _, c := range []struct{ name, text string }{
		{"p.jsonl", "\ufeff{\"id\": \"x1\", \"area\": \"a\", \"category\": \"c\", \"prompt\": \"a cat\"}\n"},
		{"p.csv", "\ufeffid,area,category,prompt\nx1,a,c,a cat\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.name)
			os.WriteFile(path, []byte(c.text), 0o644)
			ps, err := LoadPrompts(path)
			if err != nil || len(ps) != 1 || ps[0].ID != "x1" || ps[0].Prompt != "a cat" {
				t.Fatalf("%v %+v", err, ps)
			}
		})
	}
}

func TestLoadCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.csv")
	os.WriteFile(path, []byte("prompt,id,category,area\n\"a cat, upside down\",x1,Imaginative scenes,Creativity & Imagination\n"), 0o644)
	ps, err := LoadPrompts(path)
	if err != nil || len(ps) != 1 || ps[0].Prompt != "a cat, upside down" || ps[0].ID != "x1" {
		t.Fatalf("%v %+v", err, ps)
	}
	os.WriteFile(path, []byte("id,prompt\nx,y\n"), 0o644)
	if _, err := LoadPrompts(path); err == nil || !strings.Contains(err.Error(), `"area"`) {
		t.Fatalf("missing column: %v", err)
	}
	os.WriteFile(path+".jsonl", []byte(`{"id": "a b", "prompt": "x"}`), 0o644)
	if _, err := LoadPrompts(path + ".jsonl"); err == nil || !strings.Contains(err.Error(), "slashes or spaces") {
		t.Fatalf("bad id: %v", err)
	}
}

// For several n, the shards partition the run: every item exactly once.
func TestShardsPartition(t *testing.T) {
	items := Items(DefaultPrompts()[:17], []string{"sd", "rfnet", "rfnet-no-saa"}, 2)
	for _, n := range []int{1, 2, 3, 7, 8, 200} {
		count := map[string]int{}
		for i := 0; i < n; i++ {
			for _, it := range (Shard{i, n}).Select(items) {
				count[it.Key()]++
			}
		}
		if len(count) != len(items) {
			t.Fatalf("n=%d: %d distinct items, want %d", n, len(count), len(items))
		}
		for k, c := range count {
			if c != 1 {
				t.Fatalf("n=%d: %s in %d shards", n, k, c)
			}
		}
	}
	if _, err := ParseShard("3/3"); err == nil {
		t.Fatal("3/3 must be refused")
	}
}

// countingPlanner counts calls and plans offline.
type countingPlanner struct{ calls atomic.Int32 }

func (c *countingPlanner) Plan(ctx context.Context, caption string) (*llm.Plan, error) {
	c.calls.Add(1)
	return llm.Offline{}.Plan(ctx, caption)
}

func tinyRunner(t *testing.T, out string) (*Runner, *countingPlanner) {
	m, err := pipeline.Load(fixtures.Path("models", "tiny-sd2"), pipeline.LoadOptions{Backend: cpu.New(), DType: tensor.Float32})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c := rfnet.Default()
	c.Steps, c.Width, c.Height = 3, 64, 64
	p := &countingPlanner{}
	return &Runner{Model: m, Planner: p, Config: c, Out: out, Info: rfnet.ModelInfo{Hash: "test"}}, p
}

// Killing a run part-way and running it again gives every item exactly once;
// plans are asked for once per prompt and reused across methods and seeds.
func TestResumeAfterKill(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the model hash's cache
	out := t.TempDir()
	r, planner := tinyRunner(t, out)
	items := Items(DefaultPrompts()[:3], []string{"sd", "rfnet"}, 2)
	ctx, cancel := context.WithCancel(context.Background())
	r.Progress = func(done, total int) {
		if done == 5 {
			cancel() // killed after five items
		}
	}
	s, err := r.Run(ctx, items)
	if err == nil || s.Generated != 5 {
		t.Fatalf("first run: %+v, %v", s, err)
	}
	r.Progress = nil
	s, err = r.Run(context.Background(), items)
	if err != nil || s.Generated != len(items)-5 || s.Skipped != 5 || s.Failed != 0 {
		t.Fatalf("second run: %+v, %v", s, err)
	}
	var files []string
	filepath.Walk(filepath.Join(out, "images"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(out, "images"), p)
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	if len(files) != 2*len(items) {
		t.Fatalf("%d files for %d items: %v", len(files), len(items), files)
	}
	for _, it := range items {
		finished(t, out, it)
		checkParameters(t, r, it)
	}
	if n := planner.calls.Load(); n != 3 {
		t.Fatalf("the planner was asked %d times for 3 prompts", n)
	}
	metas, broken, err := LoadMetas(out)
	if err != nil || len(metas) != len(items) || len(broken) != 0 {
		t.Fatalf("%d metadata files, broken %v, %v", len(metas), broken, err)
	}
	for _, m := range metas {
		if (m.Method == "rfnet") != (m.Plan != nil) || m.Model.Hash != "test" || m.Seconds["total"] <= 0 {
			t.Fatalf("metadata %+v", m)
		}
	}
	// Merging two halves gives the whole run, without the claim of a process
	// still at work in one of them.
	a, b := t.TempDir(), t.TempDir()
	Start(a, Run{PromptsSHA256: "p", Model: rfnet.ModelInfo{Hash: "test"}})
	Start(b, Run{PromptsSHA256: "p", Model: rfnet.ModelInfo{Hash: "test"}})
	for i, it := range items {
		dst := []string{a, b}[i%2]
		img, meta := itemPaths(it)
		for _, f := range []string{img, meta} {
			data, _ := os.ReadFile(filepath.Join(out, f))
			os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o755)
			os.WriteFile(filepath.Join(dst, f), data, 0o644)
		}
	}
	os.WriteFile(filepath.Join(a, "images", "sd", "p9-s0.claim"), []byte(`{"pid": 1}`), 0o644)
	merged := t.TempDir()
	if _, err := Merge(merged, []string{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		finished(t, merged, it)
	}
	if _, err := os.Stat(filepath.Join(merged, "images", "sd", "p9-s0.claim")); err == nil {
		t.Error("merge copied a claim file")
	}
}

// finished fails the test unless the item is finished and intact.
func finished(t *testing.T, out string, it Item) {
	t.Helper()
	_, meta := itemPaths(it)
	if _, err := Check(out, meta); err != nil {
		t.Fatalf("%s: %v", it.Key(), err)
	}
}
