package sam

import (
	"fmt"

	"github.com/rfnet/rfnet-native/internal/jsonconfig"
)

// Config follows transformers' SamConfig (config.json), section by section.
type Config struct {
	Vision        VisionConfig        `json:"vision_config"`
	PromptEncoder PromptEncoderConfig `json:"prompt_encoder_config"`
	MaskDecoder   MaskDecoderConfig   `json:"mask_decoder_config"`
}

// VisionConfig is SamVisionConfig: the ViT image encoder and its neck.
type VisionConfig struct {
	HiddenSize        int     `json:"hidden_size"`
	OutputChannels    int     `json:"output_channels"`
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	NumAttentionHeads int     `json:"num_attention_heads"`
	NumChannels       int     `json:"num_channels"`
	ImageSize         int     `json:"image_size"`
	PatchSize         int     `json:"patch_size"`
	HiddenAct         string  `json:"hidden_act"`
	LayerNormEps      float64 `json:"layer_norm_eps"`
	QKVBias           bool    `json:"qkv_bias"`
	MLPRatio          float64 `json:"mlp_ratio"`
	// MLPDim is the MLP's width; 0 (or null in the file) means MLPRatio·HiddenSize,
	// as transformers fills it in.
	MLPDim    int  `json:"mlp_dim"`
	UseAbsPos bool `json:"use_abs_pos"`
	UseRelPos bool `json:"use_rel_pos"`
	// WindowSize is the side of the attention windows of the blocks not listed in
	// GlobalAttnIndexes; 0 makes every block global.
	WindowSize        int   `json:"window_size"`
	GlobalAttnIndexes []int `json:"global_attn_indexes"`
	// NumPosFeats is the number of random Fourier frequencies of the shared
	// positional encoding (half the prompt encoder's width).
	NumPosFeats int `json:"num_pos_feats"`
}

// PromptEncoderConfig is SamPromptEncoderConfig.
type PromptEncoderConfig struct {
	HiddenSize         int    `json:"hidden_size"`
	ImageSize          int    `json:"image_size"`
	PatchSize          int    `json:"patch_size"`
	MaskInputChannels  int    `json:"mask_input_channels"`
	NumPointEmbeddings int    `json:"num_point_embeddings"`
	HiddenAct          string `json:"hidden_act"`
}

// MaskDecoderConfig is SamMaskDecoderConfig: the two-way transformer and the heads.
type MaskDecoderConfig struct {
	HiddenSize              int     `json:"hidden_size"`
	HiddenAct               string  `json:"hidden_act"`
	MLPDim                  int     `json:"mlp_dim"`
	NumHiddenLayers         int     `json:"num_hidden_layers"`
	NumAttentionHeads       int     `json:"num_attention_heads"`
	AttentionDownsampleRate int     `json:"attention_downsample_rate"`
	NumMultimaskOutputs     int     `json:"num_multimask_outputs"`
	IoUHeadDepth            int     `json:"iou_head_depth"`
	IoUHeadHiddenDim        int     `json:"iou_head_hidden_dim"`
	LayerNormEps            float64 `json:"layer_norm_eps"`
}

// ViTBase is facebook/sam-vit-base, per its config.json.
func ViTBase() Config {
	return Config{
		Vision: VisionConfig{HiddenSize: 768, OutputChannels: 256, NumHiddenLayers: 12, NumAttentionHeads: 12,
			NumChannels: 3, ImageSize: 1024, PatchSize: 16, HiddenAct: "gelu", LayerNormEps: 1e-6, QKVBias: true,
			MLPRatio: 4, UseAbsPos: true, UseRelPos: true, WindowSize: 14, GlobalAttnIndexes: []int{2, 5, 8, 11},
			NumPosFeats: 128},
		PromptEncoder: PromptEncoderConfig{HiddenSize: 256, ImageSize: 1024, PatchSize: 16, MaskInputChannels: 16,
			NumPointEmbeddings: 4, HiddenAct: "gelu"},
		MaskDecoder: MaskDecoderConfig{HiddenSize: 256, HiddenAct: "relu", MLPDim: 2048, NumHiddenLayers: 2,
			NumAttentionHeads: 8, AttentionDownsampleRate: 2, NumMultimaskOutputs: 3, IoUHeadDepth: 3,
			IoUHeadHiddenDim: 256, LayerNormEps: 1e-6},
	}
}

// LoadConfig reads a SamModel config.json; keys it lacks keep base's values.
func LoadConfig(path string, base Config) (Config, error) {
	return jsonconfig.Load("sam", path, base, Config.Validate)
}

// Grid is the side of the image embedding, in patches.
func (c Config) Grid() int { return c.Vision.ImageSize / c.Vision.PatchSize }

// VisionMLPDim is the encoder MLP's width.
func (c Config) VisionMLPDim() int {
	if c.Vision.MLPDim > 0 {
		return c.Vision.MLPDim
	}
	return int(c.Vision.MLPRatio * float64(c.Vision.HiddenSize))
}

// windowOf is block i's window side; 0 means global attention.
func (c Config) windowOf(i int) int {
	for _, g := range c.Vision.GlobalAttnIndexes {
		if g == i {
			return 0
		}
	}
	return c.Vision.WindowSize
}

// Validate checks the config describes a model this package builds.
func (c Config) Validate() error {
	v, p, m := c.Vision, c.PromptEncoder, c.MaskDecoder
	positive := []struct {
		name string
		v    int
	}{
		{"vision_config.hidden_size", v.HiddenSize}, {"vision_config.output_channels", v.OutputChannels},
		{"vision_config.num_hidden_layers", v.NumHiddenLayers}, {"vision_config.num_attention_heads", v.NumAttentionHeads},
		{"vision_config.image_size", v.ImageSize}, {"vision_config.patch_size", v.PatchSize},
		{"vision_config.num_pos_feats", v.NumPosFeats}, {"vision_config.mlp_dim (or mlp_ratio)", c.VisionMLPDim()},
		{"mask_decoder_config.hidden_size", m.HiddenSize}, {"mask_decoder_config.mlp_dim", m.MLPDim},
		{"mask_decoder_config.num_hidden_layers", m.NumHiddenLayers},
		{"mask_decoder_config.num_attention_heads", m.NumAttentionHeads},
		{"mask_decoder_config.attention_downsample_rate", m.AttentionDownsampleRate},
		{"mask_decoder_config.num_multimask_outputs", m.NumMultimaskOutputs},
		{"mask_decoder_config.iou_head_hidden_dim", m.IoUHeadHiddenDim},
	}
	for _, f := range positive {
		if f.v < 1 {
			return fmt.Errorf("sam: config: %s is %d, want a positive number", f.name, f.v)
		}
	}
	switch {
	case v.NumChannels != 3:
		return fmt.Errorf("sam: config: vision_config.num_channels is %d; only RGB (3) is supported", v.NumChannels)
	case v.ImageSize%v.PatchSize != 0:
		return fmt.Errorf("sam: config: vision_config.image_size %d is not a multiple of patch_size %d", v.ImageSize, v.PatchSize)
	case v.HiddenSize%v.NumAttentionHeads != 0:
		return fmt.Errorf("sam: config: vision_config.hidden_size %d does not split into %d heads", v.HiddenSize, v.NumAttentionHeads)
	case v.HiddenAct != "gelu":
		return fmt.Errorf("sam: config: vision_config.hidden_act %q is not supported (want gelu)", v.HiddenAct)
	case !v.UseAbsPos || !v.UseRelPos:
		return fmt.Errorf("sam: config: vision_config.use_abs_pos and use_rel_pos must be true (SAM's encoders use both)")
	case v.WindowSize < 0:
		return fmt.Errorf("sam: config: vision_config.window_size %d is negative", v.WindowSize)
	case v.LayerNormEps <= 0 || m.LayerNormEps <= 0:
		return fmt.Errorf("sam: config: layer_norm_eps must be positive")
	case 2*v.NumPosFeats != p.HiddenSize:
		return fmt.Errorf("sam: config: vision_config.num_pos_feats %d is not half of prompt_encoder_config.hidden_size %d", v.NumPosFeats, p.HiddenSize)
	case p.HiddenSize != v.OutputChannels || m.HiddenSize != v.OutputChannels:
		return fmt.Errorf("sam: config: prompt_encoder_config.hidden_size %d and mask_decoder_config.hidden_size %d must equal vision_config.output_channels %d",
			p.HiddenSize, m.HiddenSize, v.OutputChannels)
	case p.ImageSize != v.ImageSize || p.PatchSize != v.PatchSize:
		return fmt.Errorf("sam: config: prompt_encoder_config image_size %d / patch_size %d differ from vision_config's %d / %d",
			p.ImageSize, p.PatchSize, v.ImageSize, v.PatchSize)
	case p.NumPointEmbeddings != 4:
		return fmt.Errorf("sam: config: prompt_encoder_config.num_point_embeddings is %d, want 4 (negative, positive, two box corners)", p.NumPointEmbeddings)
	case m.HiddenAct != "relu":
		return fmt.Errorf("sam: config: mask_decoder_config.hidden_act %q is not supported (want relu)", m.HiddenAct)
	case m.HiddenSize%m.AttentionDownsampleRate != 0 || (m.HiddenSize/m.AttentionDownsampleRate)%m.NumAttentionHeads != 0 || m.HiddenSize%m.NumAttentionHeads != 0:
		return fmt.Errorf("sam: config: mask_decoder_config.hidden_size %d with attention_downsample_rate %d does not split into %d heads",
			m.HiddenSize, m.AttentionDownsampleRate, m.NumAttentionHeads)
	case m.HiddenSize%8 != 0:
		return fmt.Errorf("sam: config: mask_decoder_config.hidden_size %d is not a multiple of 8 (the upscaling divides it by 4 and 8)", m.HiddenSize)
	case m.IoUHeadDepth < 2:
		return fmt.Errorf("sam: config: mask_decoder_config.iou_head_depth %d, want at least 2", m.IoUHeadDepth)
	}
	for _, g := range v.GlobalAttnIndexes {
		if g < 0 || g >= v.NumHiddenLayers {
			return fmt.Errorf("sam: config: vision_config.global_attn_indexes has %d, outside the %d blocks", g, v.NumHiddenLayers)
		}
	}
	return nil
}
