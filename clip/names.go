package clip

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/rfnet/rfnet-native/weights"
)

// Single-file checkpoints store the text encoder under cond_stage_model:
//   - SD 1.x: cond_stage_model.transformer.<Hugging Face names> (older files lack "text_model.");
//   - SD 2.x: cond_stage_model.model.<OpenCLIP names>, q, k and v stacked in attn.in_proj_*, one
//     more block than SD 2.x uses (it reads the penultimate layer), text_projection and logit_scale.
// The rules follow diffusers' convert_from_ckpt.py / convert_diffusers_to_original_stable_diffusion.py.

const (
	// PrefixCLIP is the single-file prefix of SD 1.x's text encoder.
	PrefixCLIP = "cond_stage_model.transformer."
	// PrefixOpenCLIP is the single-file prefix of SD 2.x's text encoder.
	PrefixOpenCLIP = "cond_stage_model.model."
)

// MapFolder serves a diffusers text_encoder/model.safetensors as is; the
// position_ids buffer that older transformers saved is skipped.
func MapFolder(f *weights.File) *weights.Mapping {
	return weights.MapFile(f, "", skipPositionIDs)
}

func skipPositionIDs(name string) string {
	if strings.HasSuffix(name, "embeddings.position_ids") {
		return ""
	}
	return name
}

// MapCLIP serves SD 1.x's text encoder from a single file.
func MapCLIP(f *weights.File) *weights.Mapping {
	return weights.MapFile(f, PrefixCLIP, func(name string) string {
		if !strings.HasPrefix(name, "text_model.") {
			name = "text_model." + name
		}
		return skipPositionIDs(name)
	})
}

var resblock = regexp.MustCompile(`^transformer\.resblocks\.(\d+)\.(.*)$`)

// openCLIPBlockNames maps the parts of an OpenCLIP residual block to CLIPTextModel names.
var openCLIPBlockNames = map[string]string{
	"ln_1.weight": "layer_norm1.weight", "ln_1.bias": "layer_norm1.bias",
	"ln_2.weight": "layer_norm2.weight", "ln_2.bias": "layer_norm2.bias",
	"attn.out_proj.weight": "self_attn.out_proj.weight", "attn.out_proj.bias": "self_attn.out_proj.bias",
	"mlp.c_fc.weight": "mlp.fc1.weight", "mlp.c_fc.bias": "mlp.fc1.bias",
	"mlp.c_proj.weight": "mlp.fc2.weight", "mlp.c_proj.bias": "mlp.fc2.bias",
}

// MapOpenCLIP serves SD 2.x's text encoder from a single file, using the first
// `layers` blocks (one fewer than stored); the last block, text_projection and
// logit_scale are not used by SD 2.x and are skipped.
func MapOpenCLIP(f *weights.File, layers int) *weights.Mapping {
	return mapOpenCLIP(f, PrefixOpenCLIP, layers, false)
}

// PrefixRefiner is the single-file prefix of the SDXL refiner's text encoder
// (sd_xl_refiner_1.0.safetensors; its other embedders, of the size and
// aesthetic-score conditions, have no weights).
const PrefixRefiner = "conditioner.embedders.0.model."

// MapOpenCLIPProjected serves an SDXL text encoder stored with OpenCLIP names
// under prefix as a CLIPTextModelWithProjection: every block, and
// text_projection, which OpenCLIP multiplies from the right (x·P), as the
// transposed linear weight (diffusers' convert_from_ckpt.py
// convert_open_clip_checkpoint). logit_scale is not used and is skipped.
func MapOpenCLIPProjected(f *weights.File, prefix string) *weights.Mapping {
	return mapOpenCLIP(f, prefix, -1, true)
}

// mapOpenCLIP maps OpenCLIP names under prefix: the first `layers` blocks
// (all for -1), and text_projection when projection is set.
func mapOpenCLIP(f *weights.File, prefix string, layers int, projection bool) *weights.Mapping {
	m := weights.NewMapping()
	for _, stored := range f.Names() {
		name, ok := strings.CutPrefix(stored, prefix)
		if !ok {
			continue
		}
		switch name {
		case "token_embedding.weight":
			m.Add("text_model.embeddings.token_embedding.weight", f, stored)
			continue
		case "positional_embedding":
			m.Add("text_model.embeddings.position_embedding.weight", f, stored)
			continue
		case "ln_final.weight", "ln_final.bias":
			m.Add("text_model.final_layer_norm."+strings.TrimPrefix(name, "ln_final."), f, stored)
			continue
		case "text_projection":
			if projection {
				m.AddTransposed("text_projection.weight", f, stored)
			}
			continue
		case "logit_scale", "attn_mask":
			continue
		}
		g := resblock.FindStringSubmatch(name)
		if g == nil {
			m.Unmapped(stored)
			continue
		}
		i, _ := strconv.Atoi(g[1])
		if layers >= 0 && i >= layers {
			continue
		}
		prefix := fmt.Sprintf("text_model.encoder.layers.%d.", i)
		switch g[2] {
		case "attn.in_proj_weight", "attn.in_proj_bias":
			info, _ := f.Info(stored)
			d := info.Shape[0] / 3
			kind := strings.TrimPrefix(g[2], "attn.in_proj_")
			for j, p := range []string{"q_proj", "k_proj", "v_proj"} {
				m.AddRows(prefix+"self_attn."+p+"."+kind, f, stored, j*d, (j+1)*d)
			}
		default:
			if to, ok := openCLIPBlockNames[g[2]]; ok {
				m.Add(prefix+to, f, stored)
			} else {
				m.Unmapped(stored)
			}
		}
	}
	return m
}

// InferConfig reads the text encoder's configuration from a single file's
// names and shapes, with the conventions of the released models for what the
// file does not say (64 channels per head; SD 1.x: quick-GELU, every layer;
// SD 2.x: GELU, all blocks but the last).
func InferConfig(f *weights.File) (Config, error) {
	var c Config
	var prefix, emb string
	switch {
	case hasPrefix(f, PrefixOpenCLIP):
		c, prefix, emb = OpenCLIPH14(), PrefixOpenCLIP+"transformer.resblocks.", PrefixOpenCLIP+"token_embedding.weight"
	case hasPrefix(f, PrefixCLIP):
		c = ViTL14()
		prefix, emb = PrefixCLIP+"text_model.encoder.layers.", PrefixCLIP+"text_model.embeddings.token_embedding.weight"
		if _, ok := f.Info(emb); !ok {
			prefix, emb = PrefixCLIP+"encoder.layers.", PrefixCLIP+"embeddings.token_embedding.weight"
		}
	default:
		return Config{}, fmt.Errorf("clip: %s has no text encoder (no %q or %q tensors)", f.Path(), PrefixCLIP, PrefixOpenCLIP)
	}
	info, ok := f.Info(emb)
	if !ok || len(info.Shape) != 2 {
		return Config{}, fmt.Errorf("clip: %s: no token embedding %q", f.Path(), emb)
	}
	c.VocabSize, c.HiddenSize = info.Shape[0], info.Shape[1]
	c.NumAttentionHeads = max(1, c.HiddenSize/64)
	blocks := countBlocks(f, prefix)
	c.NumHiddenLayers = blocks
	fc := prefix + "0.mlp.fc1.weight"
	if prefix == PrefixOpenCLIP+"transformer.resblocks." {
		c.NumHiddenLayers = blocks - 1
		fc = prefix + "0.mlp.c_fc.weight"
	}
	if info, ok := f.Info(fc); ok && len(info.Shape) == 2 {
		c.IntermediateSize = info.Shape[0]
	}
	return c, c.Validate()
}

func hasPrefix(f *weights.File, prefix string) bool {
	for _, n := range f.Names() {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// InferProjectedConfig reads the configuration of an SDXL text encoder stored
// with OpenCLIP names under prefix from its names and shapes, with the
// conventions of the released models for what the file does not say (64
// channels per head, GELU). Every stored block is used.
func InferProjectedConfig(f *weights.File, prefix string) (Config, error) {
	c := OpenCLIPBigG14()
	emb, ok := f.Info(prefix + "token_embedding.weight")
	if !ok || len(emb.Shape) != 2 {
		return Config{}, fmt.Errorf("clip: %s has no text encoder under %q (no token_embedding.weight)", f.Path(), prefix)
	}
	proj, ok := f.Info(prefix + "text_projection")
	if !ok || len(proj.Shape) != 2 {
		return Config{}, fmt.Errorf("clip: %s: no text_projection matrix under %q", f.Path(), prefix)
	}
	c.VocabSize, c.HiddenSize, c.ProjectionDim = emb.Shape[0], emb.Shape[1], proj.Shape[1]
	c.NumAttentionHeads = max(1, c.HiddenSize/64)
	c.NumHiddenLayers = countBlocks(f, prefix+"transformer.resblocks.")
	if info, ok := f.Info(prefix + "transformer.resblocks.0.mlp.c_fc.weight"); ok && len(info.Shape) == 2 {
		c.IntermediateSize = info.Shape[0]
	}
	return c, c.Validate()
}

// countBlocks is one more than the highest block number stored under prefix.
func countBlocks(f *weights.File, prefix string) int {
	blocks := 0
	for _, n := range f.Names() {
		if rest, ok := strings.CutPrefix(n, prefix); ok {
			i, err := strconv.Atoi(strings.SplitN(rest, ".", 2)[0])
			if err == nil && i+1 > blocks {
				blocks = i + 1
			}
		}
	}
	return blocks
}
