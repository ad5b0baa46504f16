package vae

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/rfnet/rfnet-native/weights"
)

// Prefix is where a single-file checkpoint stores the autoencoder.
const Prefix = "first_stage_model."

// legacyAttention maps the attention names of diffusers folders saved before
// 0.14 (the original SD uploads) to the current ones; shapes are the same.
var legacyAttention = strings.NewReplacer("attentions.0.query.", "attentions.0.to_q.", "attentions.0.key.", "attentions.0.to_k.",
	"attentions.0.value.", "attentions.0.to_v.", "attentions.0.proj_attn.", "attentions.0.to_out.0.")

// MapFolder serves vae/diffusion_pytorch_model.safetensors, old attention
// names included; without encoder, the encoder's tensors are skipped.
func MapFolder(f *weights.File, encoder bool) *weights.Mapping {
	return weights.MapFile(f, "", func(name string) string {
		if !encoder && encoderTensor(name) {
			return ""
		}
		return legacyAttention.Replace(name)
	})
}

// encoderTensor reports whether a tensor, by its name in a diffusers folder or
// after a single file's prefix (both start alike), belongs to the encoder half
// of the autoencoder: encoder.* and quant_conv.*, which only a feature that
// starts from an image needs. A model built without them skips them, as clip
// skips position_ids: neither loaded nor reported unused.
func encoderTensor(name string) bool {
	return strings.HasPrefix(name, "encoder.") || strings.HasPrefix(name, "quant_conv.")
}

var (
	encDown = regexp.MustCompile(`^encoder\.down\.(\d+)\.(block\.(\d+)|downsample)\.(.*)$`)
	decUp   = regexp.MustCompile(`^decoder\.up\.(\d+)\.(block\.(\d+)|upsample)\.(.*)$`)
	midPart = regexp.MustCompile(`^(encoder|decoder)\.mid\.(block_1|block_2|attn_1)\.(.*)$`)
)

var midAttention = map[string]string{"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}

// MapSingleFile serves the autoencoder of a single-file checkpoint under
// diffusers names, following diffusers' convert_from_ckpt.py: decoder up
// blocks are numbered in reverse, nin_shortcut is conv_shortcut, and the mid
// attention's 1×1 convolutions become linear weights. Without encoder, the
// encoder's tensors are skipped.
func MapSingleFile(f *weights.File, c Config, encoder bool) *weights.Mapping {
	n := len(c.BlockOutChannels)
	m := weights.NewMapping()
	resnet := strings.NewReplacer("nin_shortcut.", "conv_shortcut.")
	for _, stored := range f.Names() {
		name, ok := strings.CutPrefix(stored, Prefix)
		if !ok || !encoder && encoderTensor(name) {
			continue
		}
		switch {
		case name == "encoder.norm_out.weight" || name == "encoder.norm_out.bias" ||
			name == "decoder.norm_out.weight" || name == "decoder.norm_out.bias":
			m.Add(strings.Replace(name, "norm_out", "conv_norm_out", 1), f, stored)
		case strings.HasPrefix(name, "encoder.conv_") || strings.HasPrefix(name, "decoder.conv_") ||
			strings.HasPrefix(name, "quant_conv.") || strings.HasPrefix(name, "post_quant_conv."):
			m.Add(name, f, stored)
		case encDown.MatchString(name):
			g := encDown.FindStringSubmatch(name)
			if g[3] != "" {
				m.Add(fmt.Sprintf("encoder.down_blocks.%s.resnets.%s.%s", g[1], g[3], resnet.Replace(g[4])), f, stored)
			} else {
				m.Add(fmt.Sprintf("encoder.down_blocks.%s.downsamplers.0.%s", g[1], g[4]), f, stored)
			}
		case decUp.MatchString(name):
			g := decUp.FindStringSubmatch(name)
			level, _ := strconv.Atoi(g[1])
			i := n - 1 - level
			if g[3] != "" {
				m.Add(fmt.Sprintf("decoder.up_blocks.%d.resnets.%s.%s", i, g[3], resnet.Replace(g[4])), f, stored)
			} else {
				m.Add(fmt.Sprintf("decoder.up_blocks.%d.upsamplers.0.%s", i, g[4]), f, stored)
			}
		case midPart.MatchString(name):
			g := midPart.FindStringSubmatch(name)
			switch g[2] {
			case "block_1", "block_2":
				idx := map[string]string{"block_1": "0", "block_2": "1"}[g[2]]
				m.Add(fmt.Sprintf("%s.mid_block.resnets.%s.%s", g[1], idx, resnet.Replace(g[3])), f, stored)
			default:
				layer, param, _ := strings.Cut(g[3], ".")
				to, ok := midAttention[layer]
				if !ok {
					m.Unmapped(stored)
					continue
				}
				canon := fmt.Sprintf("%s.mid_block.attentions.0.%s.%s", g[1], to, param)
				info, _ := f.Info(stored)
				if len(info.Shape) == 4 {
					m.AddReshaped(canon, f, stored, info.Shape[:2])
				} else {
					m.Add(canon, f, stored)
				}
			}
		default:
			m.Unmapped(stored)
		}
	}
	return m
}
