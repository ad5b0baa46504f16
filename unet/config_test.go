package unet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A num_attention_heads of the base config does not override the head counts
// of a file that sets only attention_head_dim.
func TestLoadConfigHeadsComeFromTheFile(t *testing.T) {
	base := SD14()
	base.NumAttentionHeads = PerBlock{5}
	c, err := LoadConfig(writeConfig(t, `{"attention_head_dim": 10}`), base)
	if err != nil {
		t.Fatal(err)
	}
	if h := c.HeadsOf(0); h != 10 {
		t.Fatalf("block 0 has %d heads, want the file's 10", h)
	}
}

// A head count that is neither an int nor a list is refused with the file and
// the key: PerBlock's own error cannot name the key.
func TestLoadConfigNamesTheBadKey(t *testing.T) {
	path := writeConfig(t, `{"attention_head_dim": "eight"}`)
	_, err := LoadConfig(path, SD14())
	if err == nil || !strings.Contains(err.Error(), "unet: "+path+": attention_head_dim: want an int or a list of ints") {
		t.Fatalf("error %v, want one naming %s and attention_head_dim", err, path)
	}
}

// The refiner's config validates; transformer_layers_per_block reads as an
// int or a list; options this package does not build are refused by key.
func TestRefinerConfig(t *testing.T) {
	if err := Refiner().Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(writeConfig(t, `{"transformer_layers_per_block": [1, 2, 10, 4]}`), Refiner())
	if err != nil {
		t.Fatal(err)
	}
	if c.TransformerLayersOf(2) != 10 || Refiner().TransformerLayersOf(2) != 4 || SD14().TransformerLayersOf(2) != 1 {
		t.Fatalf("transformer layers: %d, %d, %d", c.TransformerLayersOf(2), Refiner().TransformerLayersOf(2), SD14().TransformerLayersOf(2))
	}
	for text, want := range map[string]string{
		`{"transformer_layers_per_block": [1, 2]}`:                                               "2 transformer_layers_per_block for 4 blocks",
		`{"transformer_layers_per_block": 0}`:                                                    "transformer_layers_per_block 0 for block 0",
		`{"addition_embed_type": "text"}`:                                                        `addition_embed_type "text" is not supported`,
		`{"class_embed_type": "projection"}`:                                                     `class_embed_type "projection" is not supported`,
		`{"addition_time_embed_dim": 255}`:                                                       "needs an even addition_time_embed_dim (got 255)",
		`{"projection_class_embeddings_input_dim": 256}`:                                         "below projection_class_embeddings_input_dim (got 256)",
		`{"mid_block_type": "UNetMidBlock2DSimpleCrossAttn"}`:                                    `mid_block_type "UNetMidBlock2DSimpleCrossAttn"`,
		`{"down_block_types": ["DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D"]}`: `down block type "AttnDownBlock2D"`,
	} {
		path := writeConfig(t, text)
		if _, err := LoadConfig(path, Refiner()); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one saying %q and naming the file", text, err, want)
		}
	}
}
