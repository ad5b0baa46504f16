package sam

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/internal/randckpt"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

func TestViTBaseIsValid(t *testing.T) {
	if err := ViTBase().Validate(); err != nil {
		t.Fatal(err)
	}
	if d := ViTBase().VisionMLPDim(); d != 3072 {
		t.Errorf("vit-base mlp width %d, want 3072", d)
	}
}

func TestTinyConfigReadsEverySection(t *testing.T) {
	c, err := LoadConfig(fixtures.Path("sam", "tiny-sam", ConfigFile), ViTBase())
	if err != nil {
		t.Fatal(err)
	}
	if c.Vision.ImageSize != 128 || c.Vision.WindowSize != 3 || len(c.Vision.GlobalAttnIndexes) != 1 ||
		c.PromptEncoder.HiddenSize != 32 || c.MaskDecoder.MLPDim != 64 || c.Grid() != 8 {
		t.Errorf("config %+v", c)
	}
}

func TestBadConfigsAreNamed(t *testing.T) {
	for _, c := range []struct {
		json, want string
	}{
		{`{"vision_config": {"num_pos_feats": 64}}`, "num_pos_feats"},
		{`{"vision_config": {"image_size": 1000}}`, "image_size 1000"},
		{`{"vision_config": {"global_attn_indexes": [12]}}`, "global_attn_indexes"},
		{`{"vision_config": {"hidden_act": "relu"}}`, "vision_config.hidden_act"},
		{`{"mask_decoder_config": {"num_attention_heads": 7}}`, "heads"},
		{`{"prompt_encoder_config": {"image_size": 512}}`, "prompt_encoder_config image_size"},
		{`{"vision_config": {"window_size": "14"}}`, "window_size"},
	} {
		path := filepath.Join(t.TempDir(), ConfigFile)
		os.WriteFile(path, []byte(c.json), 0o644)
		_, err := LoadConfig(path, ViTBase())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.json, err, c.want)
		}
	}
}

// samVitBaseManifest is facebook/sam-vit-base's tensors (names and shapes, from
// make_sam.py: the original build_sam_vit_b renamed), as a randckpt manifest.
func samVitBaseManifest(t testing.TB) randckpt.Manifest {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path("sam", "sam-vit-base-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var shapes map[string][]int
	if err := json.Unmarshal(raw, &shapes); err != nil {
		t.Fatal(err)
	}
	m := randckpt.Manifest{}
	for n, s := range shapes {
		m[n] = randckpt.Tensor{DType: "F16", Shape: s}
	}
	return m
}

// ViTBase builds against sam-vit-base's tensor names and shapes with nothing
// missing and nothing unused (a sparse file: no weights are read).
func TestViTBaseFitsTheReleasedTensors(t *testing.T) {
	path := filepath.Join(t.TempDir(), WeightsFile)
	if err := randckpt.WriteSparse(path, samVitBaseManifest(t)); err != nil {
		t.Fatal(err)
	}
	f, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := MapWeights(f)
	if err != nil {
		t.Fatal(err)
	}
	src := weights.NewSource("sam", m, tensor.Meta{}, tensor.Float32)
	Build(src, ViTBase())
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
}
