package clip

import (
	"fmt"

	"github.com/rfnet/rfnet-native/internal/jsonconfig"
)

// Config follows the keys of a Hugging Face CLIPTextConfig (text_encoder/config.json).
type Config struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	HiddenAct             string  `json:"hidden_act"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	// ProjectionDim is the width of text_projection, which only
	// CLIPTextModelWithProjection (SDXL's pooled embedding) has.
	ProjectionDim int `json:"projection_dim"`
}

// ViTL14 is the text tower of OpenAI's CLIP ViT-L/14, SD 1.x's text encoder.
func ViTL14() Config {
	return Config{VocabSize: 49408, HiddenSize: 768, IntermediateSize: 3072, NumHiddenLayers: 12,
		NumAttentionHeads: 12, MaxPositionEmbeddings: 77, HiddenAct: "quick_gelu", LayerNormEps: 1e-5}
}

// OpenCLIPH14 is SD 2.x's text encoder: OpenCLIP ViT-H/14's text tower cut
// after its penultimate block (23 of 24), as the diffusers folders store it.
func OpenCLIPH14() Config {
	return Config{VocabSize: 49408, HiddenSize: 1024, IntermediateSize: 4096, NumHiddenLayers: 23,
		NumAttentionHeads: 16, MaxPositionEmbeddings: 77, HiddenAct: "gelu", LayerNormEps: 1e-5}
}

// OpenCLIPBigG14 is the SDXL refiner's text encoder (text_encoder_2/config.json
// of stabilityai/stable-diffusion-xl-refiner-1.0): OpenCLIP ViT-bigG/14's
// text tower, every block kept (SDXL reads the penultimate layer's hidden
// states and the final layer's pooled output, projected).
func OpenCLIPBigG14() Config {
	return Config{VocabSize: 49408, HiddenSize: 1280, IntermediateSize: 5120, NumHiddenLayers: 32,
		NumAttentionHeads: 20, MaxPositionEmbeddings: 77, HiddenAct: "gelu", LayerNormEps: 1e-5, ProjectionDim: 1280}
}

// LoadConfig reads a text_encoder/config.json; keys it lacks keep base's values.
func LoadConfig(path string, base Config) (Config, error) {
	return jsonconfig.Load("clip", path, base, Config.Validate)
}

// LoadFamilyConfig reads a text_encoder/config.json (once) whose family is
// not known yet: keys it lacks keep the values of the text encoder that
// family, given what the file says over ViT-L/14's, chooses.
func LoadFamilyConfig(path string, family func(Config) Config) (Config, error) {
	return jsonconfig.LoadRebased("clip", path, ViTL14(), family, Config.Validate)
}

// Validate checks that the numbers describe a model.
func (c Config) Validate() error {
	switch {
	case c.VocabSize < 3 || c.HiddenSize < 1 || c.IntermediateSize < 1 || c.NumHiddenLayers < 1:
		return fmt.Errorf("clip: config: vocab_size %d, hidden_size %d, intermediate_size %d, num_hidden_layers %d must be positive",
			c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers)
	case c.NumAttentionHeads < 1 || c.HiddenSize%c.NumAttentionHeads != 0:
		return fmt.Errorf("clip: config: hidden_size %d does not split into num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	case c.MaxPositionEmbeddings < MaxLength:
		return fmt.Errorf("clip: config: max_position_embeddings %d < %d", c.MaxPositionEmbeddings, MaxLength)
	case c.HiddenAct != "quick_gelu" && c.HiddenAct != "gelu":
		return fmt.Errorf("clip: config: hidden_act %q (want quick_gelu or gelu)", c.HiddenAct)
	case c.ProjectionDim < 0:
		return fmt.Errorf("clip: config: projection_dim %d", c.ProjectionDim)
	}
	return nil
}
