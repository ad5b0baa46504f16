package unet

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rfnet/rfnet-native/weights"
)

// Prefix is where a single-file checkpoint stores the UNet.
const Prefix = "model.diffusion_model."

// rule maps one original prefix to its diffusers prefix; resnet blocks also
// rename their inner layers.
type rule struct {
	original, canonical string
	resnet              bool
}

var resnetNames = strings.NewReplacer(
	"in_layers.0.", "norm1.", "in_layers.2.", "conv1.", "emb_layers.1.", "time_emb_proj.",
	"out_layers.0.", "norm2.", "out_layers.3.", "conv2.", "skip_connection.", "conv_shortcut.")

// rules derives the original-to-diffusers table from the architecture, as
// diffusers' convert_from_ckpt.py does: down block i, layer j is
// input_blocks[(L+1)·i + j + 1]; its downsampler input_blocks[(L+1)·(i+1)];
// up block i, layer j is output_blocks[(L+1)·i + j], its upsampler the last
// module of output_blocks[(L+1)·i + L].
func rules(c Config) []rule {
	L := c.LayersPerBlock
	rs := []rule{
		{"time_embed.0.", "time_embedding.linear_1.", false},
		{"time_embed.2.", "time_embedding.linear_2.", false},
		{"input_blocks.0.0.", "conv_in.", false},
		{"out.0.", "conv_norm_out.", false},
		{"out.2.", "conv_out.", false},
		{"middle_block.0.", "mid_block.resnets.0.", true},
		{"middle_block.1.", "mid_block.attentions.0.", false},
		{"middle_block.2.", "mid_block.resnets.1.", true},
	}
	if c.AdditionEmbedType == TextTime {
		// label_emb is the original name of SDXL's add_embedding
		// (scripts/convert_diffusers_to_original_sdxl.py).
		rs = append(rs, rule{"label_emb.0.0.", "add_embedding.linear_1.", false}, rule{"label_emb.0.2.", "add_embedding.linear_2.", false})
	}
	n := c.Levels()
	for i := 0; i < n; i++ {
		for j := 0; j < L; j++ {
			in := (L+1)*i + j + 1
			rs = append(rs, rule{fmt.Sprintf("input_blocks.%d.0.", in), fmt.Sprintf("down_blocks.%d.resnets.%d.", i, j), true})
			if c.downHasAttention(i) {
				rs = append(rs, rule{fmt.Sprintf("input_blocks.%d.1.", in), fmt.Sprintf("down_blocks.%d.attentions.%d.", i, j), false})
			}
		}
		if i < n-1 {
			rs = append(rs, rule{fmt.Sprintf("input_blocks.%d.0.op.", (L+1)*(i+1)), fmt.Sprintf("down_blocks.%d.downsamplers.0.conv.", i), false})
		}
		for j := 0; j <= L; j++ {
			out := (L+1)*i + j
			rs = append(rs, rule{fmt.Sprintf("output_blocks.%d.0.", out), fmt.Sprintf("up_blocks.%d.resnets.%d.", i, j), true})
			if c.upHasAttention(i) {
				rs = append(rs, rule{fmt.Sprintf("output_blocks.%d.1.", out), fmt.Sprintf("up_blocks.%d.attentions.%d.", i, j), false})
			}
		}
		if i < n-1 {
			pos := 1
			if c.upHasAttention(i) {
				pos = 2
			}
			rs = append(rs, rule{fmt.Sprintf("output_blocks.%d.%d.conv.", (L+1)*i+L, pos), fmt.Sprintf("up_blocks.%d.upsamplers.0.conv.", i), false})
		}
	}
	// Longest prefix first, so input_blocks.3.0.op. wins over input_blocks.3.0.
	sort.Slice(rs, func(a, b int) bool { return len(rs[a].original) > len(rs[b].original) })
	return rs
}

// MapSingleFile serves the UNet of a single-file checkpoint under diffusers names.
func MapSingleFile(f *weights.File, c Config) *weights.Mapping {
	rs := rules(c)
	m := weights.NewMapping()
	for _, stored := range f.Names() {
		name, ok := strings.CutPrefix(stored, Prefix)
		if !ok {
			continue
		}
		mapped := false
		for _, r := range rs {
			if rest, ok := strings.CutPrefix(name, r.original); ok {
				if r.resnet {
					rest = resnetNames.Replace(rest)
				}
				m.Add(r.canonical+rest, f, stored)
				mapped = true
				break
			}
		}
		if !mapped {
			m.Unmapped(stored)
		}
	}
	return m
}

// MapFolder serves unet/diffusion_pytorch_model.safetensors as is.
func MapFolder(f *weights.File) *weights.Mapping { return weights.MapFile(f, "", nil) }
