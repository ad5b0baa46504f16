package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/rfbench"
)

// A result whose score is not a number from 0 to 1 does not enter the
// tables: it is listed under "Skipped items", and the average is that of the
// valid results alone.
func TestWriteSkipsScoresOutsideRange(t *testing.T) {
	run := t.TempDir()
	if err := rfbench.Start(run, rfbench.Run{PromptsSHA256: "p", Methods: []string{"sd"}, Seeds: 1}); err != nil {
		t.Fatal(err)
	}
	for id, score := range map[string]string{"p1": "0.73", "p2": "5.0", "p3": "-1"} {
		var buf bytes.Buffer
		png.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)))
		sum := sha256.Sum256(buf.Bytes())
		m := rfbench.Meta{ID: id, Area: rfbench.RealisticAnalytical, Category: "c", Prompt: "a cat", Method: "sd",
			Image: "images/sd/" + id + "-s0.png", ImageBytes: int64(buf.Len()), ImageSHA256: hex.EncodeToString(sum[:]), Width: 8, Height: 8}
		os.MkdirAll(filepath.Join(run, "images", "sd"), 0o755)
		os.WriteFile(filepath.Join(run, m.Image), buf.Bytes(), 0o644)
		pipeline.WriteJSON(filepath.Join(run, "images", "sd", id+"-s0.json"), m)
		os.MkdirAll(filepath.Join(run, "eval", "gpt4score", "sd"), 0o755)
		os.WriteFile(filepath.Join(run, "eval", "gpt4score", "sd", id+"-s0.json"), []byte(`{"id": "`+id+`", "method": "sd", "seed": 0, "status": "ok", "score": `+
			score+`, "image_sha256": "`+m.ImageSHA256+`"}`), 0o644)
	}
	out := filepath.Join(run, "report.html")
	if err := Write(run, out); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(out)
	for _, want := range []string{
		`data-col="avg">0.730 <span class="count">1/3`,
		"<code>eval/gpt4score/sd/p2-s0.json: score 5, want a number from 0 to 1</code>",
		"<code>eval/gpt4score/sd/p3-s0.json: score -1, want a number from 0 to 1</code>",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}
