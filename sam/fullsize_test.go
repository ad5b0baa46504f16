package sam

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/randckpt"
	"github.com/rfnet/rfnet-native/tensor"
)

// A full-size random checkpoint with sam-vit-base's tensors and config loads
// through Load and segments one 1024-sized image: every output has its released
// shape and is finite. It runs the whole ViT-B at 1024² on the CPU (tens of
// seconds on two cores), so -short skips it.
func TestFullSizeRandomCheckpointRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size SAM forward on the CPU; skipped with -short")
	}
	dir := t.TempDir()
	if err := randckpt.Write(filepath.Join(dir, WeightsFile), samVitBaseManifest(t), 24); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(ViTBase())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, cpu.New(), tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Preprocess(readImage(t, "wide"), m.Config.Vision.ImageSize)
	if err != nil {
		t.Fatal(err)
	}
	emb := m.EmbedImage(p.Tensor(cpu.New(), tensor.Float32))
	if want := (tensor.Shape{1, 256, 64, 64}); !emb.Shape().Equal(want) {
		t.Fatalf("image embeddings %v, want %v", emb.Shape(), want)
	}
	pt, err := p.ScalePoint(3*200/16, 5*120/16)
	if err != nil {
		t.Fatal(err)
	}
	low, iou, err := m.Predict(emb, Prompt{Points: [][2]float64{pt}, Labels: []int{Foreground}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !low.Shape().Equal(tensor.Shape{1, 3, 256, 256}) || !iou.Shape().Equal(tensor.Shape{1, 3}) {
		t.Fatalf("low-res logits %v and iou %v, want [1 3 256 256] and [1 3]", low.Shape(), iou.Shape())
	}
	masks := p.PostProcess(low.Reshape(3, 256, 256))
	if len(masks) != 3*120*200 {
		t.Fatalf("%d mask values, want 3x120x200", len(masks))
	}
	for name, vs := range map[string][]float64{"embeddings": emb.Float64s(), "logits": low.Float64s(), "iou": iou.Float64s()} {
		for i, v := range vs {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s[%d] = %v", name, i, v)
			}
		}
	}
}
