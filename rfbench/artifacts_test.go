package rfbench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// filesUnder lists the files under dir/rel, relative to dir, with slashes.
func filesUnder(t *testing.T, dir, rel string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, filepath.FromSlash(rel)), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(r))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// keptFiles are the paths an item's sidecar lists, and fails the test
// unless they are exactly the files in the item's folder.
func keptFiles(t *testing.T, out string, it Item) []string {
	t.Helper()
	_, meta := itemPaths(it)
	m, err := Check(out, meta)
	if err != nil {
		t.Fatalf("%s: %v", it.Key(), err)
	}
	var listed []string
	for _, f := range m.Artifacts {
		listed = append(listed, f.Path)
	}
	if got := filesUnder(t, out, artifactsDir(it.Key())); strings.Join(got, ",") != strings.Join(listed, ",") {
		t.Fatalf("%s: the folder holds %v, the sidecar lists %v", it.Key(), got, listed)
	}
	return listed
}

// With KeepArtifacts, every RFNet item (the two single-part ablations
// included) keeps what WriteArtifacts writes beside its image, listed in
// its sidecar; a plain SD item keeps nothing. Run folder walks do not take
// the kept files for items.
func TestKeepArtifacts(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	r, _ := tinyRunner(t, out)
	r.KeepArtifacts = true
	items := Items(DefaultPrompts()[:1], []string{"sd", "rfnet", "rfnet-saa-only", "rfnet-reference-only"}, 1)
	if s, err := r.Run(context.Background(), items); err != nil || s.Generated != len(items) || s.Failed != 0 {
		t.Fatalf("%+v, %v", s, err)
	}
	for _, it := range items {
		kept := keptFiles(t, out, it)
		if it.Method == "sd" {
			if len(kept) != 0 {
				t.Errorf("sd keeps %v, want nothing", kept)
			}
			continue
		}
		dir := artifactsDir(it.Key()) + "/"
		for _, want := range []string{"plan.json", "trace.jsonl", "run.json", "saa.json", "layout.png", "image.png"} {
			if !contains(kept, dir+want) {
				t.Errorf("%s keeps no %s: %v", it.Key(), want, kept)
			}
		}
		masks := 0
		for _, f := range kept {
			if strings.HasPrefix(f, dir+"objects/") && strings.HasSuffix(f, "-mask.png") {
				masks++
			}
		}
		if masks == 0 {
			t.Errorf("%s keeps no mask: %v", it.Key(), kept)
		}
	}
	metas, broken, err := LoadMetas(out)
	if err != nil || len(metas) != len(items) || len(broken) != 0 {
		t.Fatalf("%d items, broken %v, %v", len(metas), broken, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// An item whose kept artifacts are not all there is broken: Check says which
// file, and bench makes the item again, artifacts and all; so it does for an
// item killed between its artifacts and its sidecar. A resumed run
// keeping artifacts skips items made without them and says how many. Merge
// copies an item with its artifacts, and replaces a destination item with
// half its artifacts whole.
func TestKeptArtifactsResumeAndMerge(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	r, _ := tinyRunner(t, out)
	var log bytes.Buffer
	r.Log = &log
	items := Items(DefaultPrompts()[:1], []string{"sd", "rfnet"}, 2)
	plain, kept := items[:2], items[2:] // seed 0 without artifacts, seed 1 with
	if _, err := r.Run(context.Background(), plain); err != nil {
		t.Fatal(err)
	}
	r.KeepArtifacts = true
	s, err := r.Run(context.Background(), items)
	if err != nil || s.Generated != 2 || s.Skipped != 2 || s.WithoutArtifacts != 1 {
		t.Fatalf("resumed with artifacts: %+v, %v", s, err)
	}
	if !strings.Contains(log.String(), "1 finished RFNet items were made without their artifacts kept") {
		t.Errorf("the log does not say an item keeps no artifacts:\n%s", log.String())
	}
	rf := kept[1]
	if rf.Method != "rfnet" {
		t.Fatalf("item %s, want an rfnet item", rf.Key())
	}
	dir := artifactsDir(rf.Key())
	files := keptFiles(t, out, rf)

	// A kept file removed: broken, and made again whole.
	os.Remove(filepath.Join(out, dir, "trace.jsonl"))
	_, meta := itemPaths(rf)
	if _, err := Check(out, meta); err == nil || !strings.HasPrefix(err.Error(), dir+"/trace.jsonl: missing") {
		t.Fatalf("a kept file missing: %v", err)
	}
	// A killed run's leftovers in the folder go when the item is made again.
	os.WriteFile(filepath.Join(out, dir, "objects", "99-stale.png"), []byte("x"), 0o644)
	s, err = r.Run(context.Background(), kept)
	if err != nil || s.Redone != 1 || s.Skipped != 1 {
		t.Fatalf("rerun: %+v, %v", s, err)
	}
	if got := keptFiles(t, out, rf); strings.Join(got, ",") != strings.Join(files, ",") {
		t.Fatalf("made again, it keeps %v, want %v", got, files)
	}
	// Killed after its artifacts, before its sidecar: not finished, and made
	// again with a folder of its own files only.
	os.Remove(filepath.Join(out, meta))
	os.WriteFile(filepath.Join(out, dir, "objects", "99-stale.png"), []byte("x"), 0o644)
	if s, err = r.Run(context.Background(), kept); err != nil || s.Generated != 1 || len(s.Broken) != 0 {
		t.Fatalf("after a kill before the sidecar: %+v, %v", s, err)
	}
	if got := keptFiles(t, out, rf); strings.Join(got, ",") != strings.Join(files, ",") {
		t.Fatalf("made after a kill, it keeps %v, want %v", got, files)
	}

	// Merge copies the artifacts with their item, verified.
	if err := Start(out, Run{PromptsSHA256: "p", Model: rfnet.ModelInfo{Hash: "test"}}); err != nil {
		t.Fatal(err)
	}
	merged := t.TempDir()
	if n, err := Merge(merged, []string{out}, &log); err != nil || n.Items != len(items) || n.Skipped != 0 {
		t.Fatalf("merge: %+v, %v\n%s", n, err, log.String())
	}
	keptFiles(t, merged, rf)
	for _, f := range files {
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, _ := os.ReadFile(filepath.Join(merged, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs after the merge", f)
		}
	}
	// A truncated mask in the destination makes its item broken; merging
	// again replaces the item and its folder from the shard.
	var mask string
	for _, f := range files {
		if strings.HasSuffix(f, "-mask.png") {
			mask = f
		}
	}
	os.WriteFile(filepath.Join(merged, mask), nil, 0o644)
	os.WriteFile(filepath.Join(merged, dir, "objects", "99-stale.png"), []byte("x"), 0o644)
	if _, err := Check(merged, meta); err == nil || !strings.HasPrefix(err.Error(), mask+": size 0") {
		t.Fatalf("a truncated kept file: %v", err)
	}
	if n, err := Merge(merged, []string{out}, &log); err != nil || n.Items != 1 {
		t.Fatalf("merge again: %+v, %v", n, err)
	}
	if got := keptFiles(t, merged, rf); strings.Join(got, ",") != strings.Join(files, ",") {
		t.Fatalf("merged again, it keeps %v, want %v", got, files)
	}
}
