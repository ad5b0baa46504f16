package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/randckpt"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
	"github.com/rfnet/rfnet-native/unet"
)

// narrowSD15 writes SD 1.5's single-file layout with random weights and every
// width cut tenfold (UNet 32, 64, 128 and 128 channels; VAE 32 to 128) and a
// CLIP text encoder 64 wide: an SD 1.x file whose text context is not 768
// wide, small enough to run on the CPU.
func narrowSD15(t *testing.T) string {
	t.Helper()
	man, err := randckpt.ReadSingleFile("sd15-single-file")
	if err != nil {
		t.Fatal(err)
	}
	widths := map[string]map[int]int{
		unet.Prefix:          {320: 32, 640: 64, 960: 96, 1280: 128, 1920: 192, 2560: 256, 5120: 512, 10240: 1024, 768: 64},
		"cond_stage_model.":  {768: 64, 3072: 256},
		"first_stage_model.": {128: 32, 256: 64, 512: 128},
	}
	for name, tensor := range man {
		for prefix, to := range widths {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			shape := make([]int, len(tensor.Shape))
			for i, d := range tensor.Shape {
				if shape[i] = d; to[d] != 0 {
					shape[i] = to[d]
				}
			}
			tensor.Shape = shape
			man[name] = tensor
		}
	}
	p := filepath.Join(t.TempDir(), "narrow-sd15.safetensors")
	if err := randckpt.Write(p, man, 1); err != nil {
		t.Fatal(err)
	}
	return p
}

// A single file's family comes from its text encoder's names, and with it the
// UNet's heads: an SD 1.x file has 8 heads in every attention layer, whatever
// the width of its text context (the heads were SD 1.x's only when the
// context was 768 wide, and 64 channels wide otherwise: 1 or 2 here).
func TestSingleFileHeadsFollowTheFamily(t *testing.T) {
	m, err := Load(narrowSD15(t), LoadOptions{Backend: cpu.New(), DType: tensor.Float32, NoTokenizer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if v := m.Variant; v.Family != SD1 || v.UNet.CrossAttentionDim != 64 || v.Text.HiddenSize != 64 {
		t.Fatalf("detected %s, family %s, context %d, text width %d", v.Name, v.Family, v.UNet.CrossAttentionDim, v.Text.HiddenSize)
	}
	// The heads as the layers split their maps: probabilities [B, heads, H·W, tokens].
	heads := map[string]int{}
	latent := backendtest.Randn(m.Backend, tensor.Float32, 1, 1, 4, 8, 8)
	context := backendtest.Randn(m.Backend, tensor.Float32, 2, 1, 77, 64)
	if _, err := m.UNet.Forward(latent, []float64{500}, context, func(l unet.Layer, probs *tensor.Tensor) bool {
		heads[l.Key] = probs.Dim(1)
		return false
	}); err != nil {
		t.Fatal(err)
	}
	layers := m.UNet.CrossAttentionLayers(8, 8)
	if len(layers) != 16 || len(heads) != len(layers) {
		t.Fatalf("%d attention layers, %d seen by the hook; want SD 1.5's 16", len(layers), len(heads))
	}
	for _, l := range layers {
		if heads[l.Key] != 8 {
			t.Errorf("%s: %d heads, want 8", l.Key, heads[l.Key])
		}
	}
}

// A folder's text_encoder/config.json is read once, and keys it lacks take
// its family's values: a partial SD 2.x config gets OpenCLIP ViT-H's.
func TestFolderTextConfigKeepsItsFamilysDefaults(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct{ name, text string }{
		{filepath.Join("unet", "config.json"), `{}`},
		{filepath.Join("text_encoder", "config.json"), `{"hidden_act": "gelu"}`},
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f.name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := detectFolder(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.variant.Family != SD2 || c.variant.Text != clip.OpenCLIPH14() {
		t.Fatalf("family %s, text %+v; want SD 2.x with OpenCLIP ViT-H/14's config", c.variant.Family, c.variant.Text)
	}
}
