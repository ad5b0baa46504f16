package rfbench

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/pipeline"
)

// writeLegacyItem writes an item as a version before image_bytes and
// image_sha256 left it: a real 64×64 PNG and a hand-written sidecar (with a
// field this version does not know). It returns the PNG's bytes.
func writeLegacyItem(t *testing.T, out string, it Item, width int) []byte {
	t.Helper()
	img, meta := itemPaths(it)
	im := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range im.Pix {
		im.Pix[i] = uint8(i * 7)
	}
	im.Set(3, 4, color.RGBA{255, 0, 0, 255})
	path := filepath.Join(out, filepath.FromSlash(img))
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := pipeline.WritePNG(path, im, map[string]string{"parameters": "old"}); err != nil {
		t.Fatal(err)
	}
	sidecar := `{"id": "` + it.Prompt.ID + `", "area": "a", "category": "c", "prompt": "` + it.Prompt.Prompt + `",
  "method": "sd", "seed": 0, "bg_seed": 0, "image": "` + img + `", "width": ` + strconv.Itoa(width) + `, "height": ` + strconv.Itoa(width) + `,
  "steps": 3, "guidance": 7.5, "scheduler": "ddim", "seconds": {"total": 1}, "model": {"hash": "test"},
  "from_an_old_version": "kept"}`
	if err := os.WriteFile(filepath.Join(out, filepath.FromSlash(meta)), []byte(sidecar), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	return data
}

// An item of an earlier version whose image decodes whole at the sidecar's
// size is finished: bench records the size and hash into its sidecar (once,
// with one log line), and a judge result without a hash counts for it until
// bench makes the item again.
func TestLegacySidecar(t *testing.T) {
	out := t.TempDir()
	r, _ := tinyRunner(t, out)
	var log strings.Builder
	r.Log = &log
	items := Items(DefaultPrompts()[:1], []string{"sd"}, 1)
	png := writeLegacyItem(t, out, items[0], 64)
	_, metaRel := itemPaths(items[0])
	m, err := Check(out, metaRel)
	if err != nil || m.ImageBytes != int64(len(png)) || !m.HashAdded || len(m.ImageSHA256) != 64 {
		t.Fatalf("Check: %+v, %v", m, err)
	}
	old := EvalResult{ID: m.ID, Method: m.Method, Seed: m.Seed, Status: "ok"}
	if !old.Of(m) {
		t.Fatal("a result without a hash does not count for the item of an earlier version")
	}

	s, err := r.Run(context.Background(), items)
	if err != nil || s.Skipped != 1 || s.Recorded != 1 || s.Generated != 0 {
		t.Fatalf("%+v, %v", s, err)
	}
	if !strings.Contains(log.String(), "recorded the size and hash of 1 items of an earlier version") {
		t.Fatalf("log %q", log.String())
	}
	var fields map[string]any
	raw, _ := os.ReadFile(filepath.Join(out, metaRel))
	if err := json.Unmarshal(raw, &fields); err != nil || fields["image_sha256"] != m.ImageSHA256 ||
		fields["image_bytes"] != float64(len(png)) || fields["hash_added"] != true || fields["from_an_old_version"] != "kept" {
		t.Fatalf("sidecar after: %s (%v)", raw, err)
	}
	recorded, err := Check(out, metaRel)
	if err != nil || !old.Of(recorded) {
		t.Fatalf("after recording: %+v, %v", recorded, err)
	}
	log.Reset()
	if s, err := r.Run(context.Background(), items); err != nil || s.Skipped != 1 || s.Recorded != 0 || log.Len() != 0 {
		t.Fatalf("second run: %+v, %v, log %q", s, err, log.String())
	}

	// Made again, the item is no longer the one the old result judged.
	os.Remove(filepath.Join(out, metaRel))
	if s, err := r.Run(context.Background(), items); err != nil || s.Generated != 1 {
		t.Fatalf("regenerating: %+v, %v", s, err)
	}
	if fresh, err := Check(out, metaRel); err != nil || fresh.HashAdded || old.Of(fresh) {
		t.Fatalf("after regenerating: %+v, %v", fresh, err)
	}
}

// An item of an earlier version is broken when its image is truncated,
// altered (a chunk's CRC) or of another size than its sidecar says; bench
// makes it again.
func TestLegacySidecarBroken(t *testing.T) {
	for _, c := range []struct {
		name   string
		width  int
		damage func([]byte) []byte
		reason string
	}{
		{"truncated", 64, func(b []byte) []byte { return b[:len(b)-20] }, "does not decode"},
		{"bit-flipped", 64, func(b []byte) []byte { b[len(b)/2] ^= 4; return b }, "does not decode"},
		{"another size", 32, func(b []byte) []byte { return b }, "64×64, sidecar says 32×32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			r, _ := tinyRunner(t, out)
			items := Items(DefaultPrompts()[:1], []string{"sd"}, 1)
			png := writeLegacyItem(t, out, items[0], c.width)
			img, meta := itemPaths(items[0])
			os.WriteFile(filepath.Join(out, img), c.damage(png), 0o644)
			_, err := Check(out, meta)
			if err == nil || errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), img+": ") ||
				!strings.Contains(err.Error(), c.reason) || !strings.Contains(err.Error(), "earlier version") {
				t.Fatalf("Check: %v", err)
			}
			s, err := r.Run(context.Background(), items)
			if err != nil || s.Generated != 1 || len(s.Broken) != 1 || s.Recorded != 0 {
				t.Fatalf("%+v, %v", s, err)
			}
			finished(t, out, items[0])
		})
	}
}

// A prompt file that is a named pipe is refused, not read (which blocks
// until something writes to it).
func TestLoadPromptsFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "prompts.jsonl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no mkfifo here:", err)
	}
	done := make(chan error, 1)
	go func() { _, err := LoadPrompts(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") || !strings.Contains(err.Error(), fifo) {
			t.Fatalf("%v, want an error naming the FIFO", err)
		}
	case <-time.After(10 * time.Second):
		// Unblock the reader so the test binary can exit.
		f, _ := os.OpenFile(fifo, os.O_WRONLY, 0)
		f.Close()
		t.Fatal("reading the prompt file blocked")
	}
}
