package unet

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/rfnet/rfnet-native/internal/jsonconfig"
)

// Config follows the keys of diffusers' UNet2DConditionModel config.json.
type Config struct {
	SampleSize       int      `json:"sample_size"`
	InChannels       int      `json:"in_channels"`
	OutChannels      int      `json:"out_channels"`
	LayersPerBlock   int      `json:"layers_per_block"`
	BlockOutChannels []int    `json:"block_out_channels"`
	DownBlockTypes   []string `json:"down_block_types"`
	UpBlockTypes     []string `json:"up_block_types"`
	// Heads is the number of attention heads per block. Upstream calls it
	// attention_head_dim, a historical misnomer that diffusers keeps for
	// compatibility: it is read as the head count (an int or one per block).
	Heads PerBlock `json:"attention_head_dim"`
	// NumAttentionHeads, when a config sets it, takes precedence over Heads.
	NumAttentionHeads   PerBlock `json:"num_attention_heads"`
	CrossAttentionDim   int      `json:"cross_attention_dim"`
	UseLinearProjection bool     `json:"use_linear_projection"`
	UpcastAttention     bool     `json:"upcast_attention"`
	NormNumGroups       int      `json:"norm_num_groups"`
	NormEps             float64  `json:"norm_eps"`
	FlipSinToCos        bool     `json:"flip_sin_to_cos"`
	FreqShift           float64  `json:"freq_shift"`

	// TransformerLayersPerBlock is the depth of each block's transformers (an
	// int or one per block; the middle block uses the last entry, up blocks
	// the reversed list); unset means 1, as in SD 1.x/2.x.
	TransformerLayersPerBlock PerBlock `json:"transformer_layers_per_block"`
	// AdditionEmbedType "text_time" is SDXL's extra conditioning: the time ids
	// (sizes, crop, aesthetic score), each embedded in AdditionTimeEmbedDim
	// sinusoidal channels, after the pooled text embedding, through
	// add_embedding (ProjectionClassEmbeddingsInputDim wide) into the time embedding.
	AdditionEmbedType                 string `json:"addition_embed_type"`
	AdditionTimeEmbedDim              int    `json:"addition_time_embed_dim"`
	ProjectionClassEmbeddingsInputDim int    `json:"projection_class_embeddings_input_dim"`

	// Options of other diffusers UNets that this package does not build; Validate
	// rejects configs that set them.
	MidBlockType         string `json:"mid_block_type"`
	ClassEmbedType       string `json:"class_embed_type"`
	ResnetTimeScaleShift string `json:"resnet_time_scale_shift"`
	OnlyCrossAttention   any    `json:"only_cross_attention"`
	DualCrossAttention   bool   `json:"dual_cross_attention"`
}

// PerBlock is a value for every block: an int (the same for all) or a list of
// ints in JSON.
type PerBlock []int

// UnmarshalJSON accepts 8 or [5, 10, 20, 20].
func (h *PerBlock) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*h = PerBlock{n}
		return nil
	}
	var list []int
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want an int or a list of ints, got %s", b)
	}
	*h = list
	return nil
}

// SD14 is the UNet of CompVis/stable-diffusion-v1-4 (and v1-5): 8 heads everywhere,
// 768-wide text context, 1×1-conv transformer projections.
func SD14() Config {
	return Config{
		SampleSize: 64, InChannels: 4, OutChannels: 4, LayersPerBlock: 2,
		BlockOutChannels: []int{320, 640, 1280, 1280},
		DownBlockTypes:   []string{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"},
		UpBlockTypes:     []string{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"},
		Heads:            PerBlock{8}, CrossAttentionDim: 768, NormNumGroups: 32, NormEps: 1e-5, FlipSinToCos: true,
	}
}

// Refiner is the UNet of stabilityai/stable-diffusion-xl-refiner-1.0
// (unet/config.json): wider blocks without attention at the first and last
// level, heads of 64 channels, four transformer layers in every attention
// block, a 1280-wide context (OpenCLIP ViT-bigG/14) and SDXL's text_time
// conditioning on five time ids (original height and width, crop top and
// left, aesthetic score) and the pooled text embedding.
func Refiner() Config {
	c := SD14()
	c.SampleSize = 128
	c.BlockOutChannels = []int{384, 768, 1536, 1536}
	c.DownBlockTypes = []string{"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}
	c.UpBlockTypes = []string{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"}
	c.Heads = PerBlock{6, 12, 24, 24} // upstream key: attention_head_dim
	c.CrossAttentionDim = 1280
	c.UseLinearProjection = true
	c.TransformerLayersPerBlock = PerBlock{4}
	c.AdditionEmbedType = TextTime
	c.AdditionTimeEmbedDim = 256
	c.ProjectionClassEmbeddingsInputDim = 2560 // 1280 pooled + 5 time ids × 256
	c.MidBlockType = "UNetMidBlock2DCrossAttn"
	return c
}

// TextTime is the addition_embed_type of SDXL's UNets.
const TextTime = "text_time"

// LoadConfig reads unet/config.json; keys it lacks keep base's values, except
// num_attention_heads: it takes precedence over attention_head_dim, so one
// from base would override the head counts of a file that sets only the other.
func LoadConfig(path string, base Config) (Config, error) {
	base.NumAttentionHeads = nil
	return jsonconfig.Load("unet", path, base, Config.Validate)
}

// HeadsOf returns the number of heads of down block i (the middle block uses the last entry).
func (c Config) HeadsOf(i int) int {
	h := c.Heads
	if len(c.NumAttentionHeads) > 0 {
		h = c.NumAttentionHeads
	}
	if len(h) == 1 {
		return h[0]
	}
	return h[i]
}

// TransformerLayersOf returns the depth of the transformers of down block i
// (and of the up block at the same level; the middle block uses the last).
func (c Config) TransformerLayersOf(i int) int {
	switch len(c.TransformerLayersPerBlock) {
	case 0:
		return 1
	case 1:
		return c.TransformerLayersPerBlock[0]
	}
	return c.TransformerLayersPerBlock[i]
}

// Levels is the number of down (and up) blocks.
func (c Config) Levels() int { return len(c.BlockOutChannels) }

// downHasAttention and upHasAttention read the block types.
func (c Config) downHasAttention(i int) bool { return c.DownBlockTypes[i] == "CrossAttnDownBlock2D" }
func (c Config) upHasAttention(i int) bool   { return c.UpBlockTypes[i] == "CrossAttnUpBlock2D" }

// Validate checks the config describes a UNet this package builds.
func (c Config) Validate() error {
	n := c.Levels()
	switch {
	case n < 1 || len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n:
		return fmt.Errorf("unet: config: %d block_out_channels, %d down_block_types, %d up_block_types", n, len(c.DownBlockTypes), len(c.UpBlockTypes))
	case c.LayersPerBlock < 1 || c.InChannels < 1 || c.OutChannels < 1 || c.CrossAttentionDim < 1:
		return fmt.Errorf("unet: config: layers_per_block %d, in_channels %d, out_channels %d, cross_attention_dim %d must be positive",
			c.LayersPerBlock, c.InChannels, c.OutChannels, c.CrossAttentionDim)
	case c.NormNumGroups < 1:
		return fmt.Errorf("unet: config: norm_num_groups %d", c.NormNumGroups)
	}
	if tl := c.TransformerLayersPerBlock; len(tl) > 1 && len(tl) != n {
		return fmt.Errorf("unet: config: %d transformer_layers_per_block for %d blocks", len(tl), n)
	}
	for i := 0; i < n; i++ {
		if d := c.TransformerLayersOf(i); d < 1 {
			return fmt.Errorf("unet: config: transformer_layers_per_block %d for block %d", d, i)
		}
	}
	if oc, ok := c.OnlyCrossAttention.(bool); c.OnlyCrossAttention != nil && (!ok || oc) {
		return fmt.Errorf("unet: config: only_cross_attention %v is not supported", c.OnlyCrossAttention)
	}
	for _, k := range []struct{ key, value, allowed string }{
		{"mid_block_type", c.MidBlockType, "UNetMidBlock2DCrossAttn"},
		{"class_embed_type", c.ClassEmbedType, ""},
		{"resnet_time_scale_shift", c.ResnetTimeScaleShift, "default"},
		{"addition_embed_type", c.AdditionEmbedType, TextTime},
	} {
		if k.value != "" && k.value != k.allowed {
			return fmt.Errorf("unet: config: %s %q is not supported (this is not an SD 1.x/2.x or SDXL UNet)", k.key, k.value)
		}
	}
	if c.AdditionEmbedType == TextTime && (c.AdditionTimeEmbedDim < 2 || c.AdditionTimeEmbedDim%2 != 0 ||
		c.ProjectionClassEmbeddingsInputDim <= c.AdditionTimeEmbedDim) {
		return fmt.Errorf("unet: config: addition_embed_type %q needs an even addition_time_embed_dim (got %d) below projection_class_embeddings_input_dim (got %d)",
			TextTime, c.AdditionTimeEmbedDim, c.ProjectionClassEmbeddingsInputDim)
	}
	if c.DualCrossAttention {
		return fmt.Errorf("unet: config: dual_cross_attention is not supported")
	}
	heads := c.Heads
	if len(c.NumAttentionHeads) > 0 {
		heads = c.NumAttentionHeads
	}
	if len(heads) != 1 && len(heads) != n {
		return fmt.Errorf("unet: config: %d head counts for %d blocks", len(heads), n)
	}
	for i, ch := range c.BlockOutChannels {
		if ch%c.NormNumGroups != 0 {
			return fmt.Errorf("unet: config: block_out_channels[%d] = %d is not a multiple of norm_num_groups %d", i, ch, c.NormNumGroups)
		}
		if h := c.HeadsOf(i); h < 1 || ch%h != 0 {
			return fmt.Errorf("unet: config: block %d: %d channels do not split into %d heads", i, ch, h)
		}
		if !slices.Contains([]string{"CrossAttnDownBlock2D", "DownBlock2D"}, c.DownBlockTypes[i]) {
			return fmt.Errorf("unet: config: down block type %q is not supported", c.DownBlockTypes[i])
		}
		if !slices.Contains([]string{"CrossAttnUpBlock2D", "UpBlock2D"}, c.UpBlockTypes[i]) {
			return fmt.Errorf("unet: config: up block type %q is not supported", c.UpBlockTypes[i])
		}
	}
	return nil
}
