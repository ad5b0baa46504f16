package rfbench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// Merge takes whole items that pass Check: a shard's broken item is left out
// (with a log line) for another shard's intact one, a sidecar is never paired
// with another shard's image, a broken item already in the destination is
// replaced, and claims, claims put aside, locks and temporary files stay
// behind. A result that is ok for the merged image replaces a failed one.
func TestMerge(t *testing.T) {
	src := t.TempDir()
	r, _ := tinyRunner(t, src)
	items := Items(DefaultPrompts()[:3], []string{"sd"}, 1)
	if _, err := r.Run(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	run := Run{PromptsSHA256: "p", Methods: []string{"sd"}, Seeds: 1, Model: rfnet.ModelInfo{Hash: "test"}}
	a, b, out := t.TempDir(), t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b, out} {
		if err := Start(dir, run); err != nil {
			t.Fatal(err)
		}
	}
	read := func(dir, rel string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	put := func(dir, rel string, data []byte) {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flipped := func(data []byte) []byte {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 4
		return data
	}
	img0, meta0 := itemPaths(items[0])
	img1, meta1 := itemPaths(items[1])
	img2, meta2 := itemPaths(items[2])
	// Item 0: broken in a (truncated image), intact in b.
	put(a, meta0, read(src, meta0))
	put(a, img0, read(src, img0)[:100])
	put(b, meta0, read(src, meta0))
	put(b, img0, read(src, img0))
	// Item 1: a's sidecar without its image, b's (altered) image without a
	// sidecar; both are left out and named.
	put(a, meta1, read(src, meta1))
	put(b, img1, flipped(read(src, img1)))
	// Item 2: broken in the destination, intact in b.
	put(out, meta2, read(src, meta2))
	put(out, img2, flipped(read(src, img2)))
	put(b, meta2, read(src, meta2))
	put(b, img2, read(src, img2))
	// What a process at work, or killed, leaves in a shard.
	for _, rel := range []string{"images/sd/x-s0.claim", "images/sd/x-s0.claim.stale-0123abcd", "locks/host-1-1.json",
		"images/sd/.x-s0.json.tmp-123", "images/sd/.x-s0.png.tmp-456", "plans/.x.json.tmp-7"} {
		put(a, rel, []byte(`{"pid": 1}`))
	}
	// Plans: a's is broken, b's reads.
	plan := "plans/" + items[0].Prompt.ID + ".json"
	put(a, plan, []byte("{"))
	put(b, plan, []byte(`{"version": 1}`))
	// Results: a's failed, b's ok for the image merged.
	res := "eval/gpt4score/" + items[0].Key() + ".json"
	m0, _ := Check(src, meta0)
	put(a, res, []byte(`{"id": "`+m0.ID+`", "method": "sd", "seed": 0, "status": "failed", "image_sha256": "`+m0.ImageSHA256+`"}`))
	put(b, res, []byte(`{"id": "`+m0.ID+`", "method": "sd", "seed": 0, "status": "ok", "score": 0.5, "image_sha256": "`+m0.ImageSHA256+`"}`))

	var log strings.Builder
	n, err := Merge(out, []string{a, b}, &log)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range []Item{items[0], items[2]} {
		finished(t, out, it)
		img, meta := itemPaths(it)
		if !bytes.Equal(read(out, img), read(src, img)) || !bytes.Equal(read(out, meta), read(src, meta)) {
			t.Errorf("%s: not b's files", it.Key())
		}
	}
	for _, rel := range []string{img1, meta1} {
		if _, err := os.Stat(filepath.Join(out, rel)); err == nil {
			t.Errorf("%s merged from a half item", rel)
		}
	}
	filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && (strings.Contains(p, ".claim") || strings.HasPrefix(fi.Name(), ".") || fi.Name() == "locks") {
			t.Errorf("merged %s", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(out, "locks")); err == nil {
		t.Error("merged locks/")
	}
	if got := string(read(out, res)); !strings.Contains(got, `"ok"`) {
		t.Errorf("result %s", got)
	}
	if got := string(read(out, plan)); got != `{"version": 1}` {
		t.Errorf("plan %s", got)
	}
	for _, want := range []string{
		"leaving out " + meta0 + " of " + a + ": " + img0 + ": size 100",
		"leaving out " + meta1 + " of " + a + ": " + img1 + ": missing",
		"leaving out " + plan + " of " + a,
		"replacing the broken item in " + out + " (" + img2 + ": SHA-256 ",
		"leaving out " + img1 + " of " + b + ": no sidecar " + meta1 + " beside it",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	// Two results written: a's, then b's over it.
	if n.Items != 2 || n.Skipped != 4 || n.Results != 2 || n.Plans != 1 {
		t.Errorf("%+v", n)
	}
}
