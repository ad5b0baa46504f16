package rfbench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
)

// checkParameters asserts that an item's image carries the parameters text
// of generate and rfnet: A1111's keys with the item's settings, then RFNet's.
func checkParameters(t *testing.T, r *Runner, it Item) {
	t.Helper()
	imgRel, metaRel := itemPaths(it)
	chunks, err := pipeline.ReadPNGText(filepath.Join(r.Out, filepath.FromSlash(imgRel)))
	if err != nil {
		t.Fatal(err)
	}
	var meta Meta
	raw, _ := os.ReadFile(filepath.Join(r.Out, filepath.FromSlash(metaRel)))
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	unet, _ := os.ReadFile(fixtures.Path("models", "tiny-sd2", "unet", "diffusion_pytorch_model.safetensors"))
	sum := sha256.Sum256(unet)
	c := r.methodConfig(it)
	want := infotext.Params{Prompt: it.Prompt.Prompt, Steps: c.Steps, Scheduler: c.Scheduler, CFGScale: c.Guidance, Seed: &c.BgSeed,
		Width: c.Width, Height: c.Height, Model: infotext.Checkpoint{Name: "tiny-sd2", Hash: hex.EncodeToString(sum[:])[:10]},
		Method: it.Method, OverallPrompt: meta.OverallPrompt}
	got := infotext.Parse(chunks["parameters"])
	fields := got.Fields
	if it.Method == "rfnet" {
		// The objects' prompts and seeds are rfnet.Parameters', checked with rfnet's own run; here, one of each per object.
		n := len(meta.Plan.Objects)
		var objects []string
		var seeds []uint64
		o, _ := fields.Get("Objects")
		s, _ := fields.Get("Object seeds")
		if json.Unmarshal([]byte(o), &objects) != nil || json.Unmarshal([]byte(s), &seeds) != nil || len(objects) != n || len(seeds) != n {
			t.Errorf("%s: Objects %q, Object seeds %q for %d objects", it.Key(), o, s, n)
		}
		want.Objects, want.ObjectSeeds = objects, seeds
	}
	if got.Prompt != want.Prompt || !slices.Equal(fields, want.Fields()) {
		t.Errorf("%s: parameters %q, %q; want %q, %q", it.Key(), got.Prompt, fields, want.Prompt, want.Fields())
	}
}
