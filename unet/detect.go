package unet

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/rfnet/rfnet-native/weights"
)

var (
	inputBlockOp         = regexp.MustCompile(`^model\.diffusion_model\.input_blocks\.(\d+)\.0\.op\.weight$`)
	transformerBlockName = regexp.MustCompile(`^model\.diffusion_model\.(input_blocks\.\d+|middle_block)\.1\.transformer_blocks\.(\d+)\.`)
)

// InferConfig reads the UNet configuration of a single-file checkpoint from its
// names and shapes; what they do not say follows SD14 (and, for SDXL's
// text_time conditioning, the 256 channels per time id of every SDXL UNet). The heads are not in
// the file either (an attention projection splits into any number of them):
// heads gives them for the blocks' widths (BlockOutChannels), by the
// convention of the checkpoint's family, which the caller tells from the text
// encoder.
func InferConfig(f *weights.File, heads func(blockOutChannels []int) PerBlock) (Config, error) {
	shape := func(name string) ([]int, bool) {
		info, ok := f.Info(Prefix + name)
		return info.Shape, ok
	}
	c := SD14()
	convIn, ok := shape("input_blocks.0.0.weight")
	if !ok || len(convIn) != 4 {
		return Config{}, fmt.Errorf("unet: %s has no UNet (no %sinput_blocks.0.0.weight)", f.Path(), Prefix)
	}
	c.InChannels = convIn[1]
	if out, ok := shape("out.2.weight"); ok && len(out) == 4 {
		c.OutChannels = out[0]
	}
	// Downsamplers sit at input_blocks[(L+1)·(i+1)]: the first gives L, their count the levels.
	first, count := 0, 0
	for _, n := range f.Names() {
		if g := inputBlockOp.FindStringSubmatch(n); g != nil {
			i, _ := strconv.Atoi(g[1])
			if first == 0 || i < first {
				first = i
			}
			count++
		}
	}
	if first < 2 {
		return Config{}, fmt.Errorf("unet: %s: cannot find the downsampling blocks (input_blocks.N.0.op)", f.Path())
	}
	L := first - 1
	levels := count + 1
	c.LayersPerBlock = L
	c.BlockOutChannels = make([]int, levels)
	c.DownBlockTypes = make([]string, levels)
	c.UpBlockTypes = make([]string, levels)
	for i := 0; i < levels; i++ {
		idx := (L+1)*i + 1
		w, ok := shape(fmt.Sprintf("input_blocks.%d.0.out_layers.3.weight", idx))
		if !ok || len(w) != 4 {
			return Config{}, fmt.Errorf("unet: %s: missing %sinput_blocks.%d.0.out_layers.3.weight", f.Path(), Prefix, idx)
		}
		c.BlockOutChannels[i] = w[0]
		c.DownBlockTypes[i] = "DownBlock2D"
		c.UpBlockTypes[levels-1-i] = "UpBlock2D"
		if proj, ok := shape(fmt.Sprintf("input_blocks.%d.1.proj_in.weight", idx)); ok {
			c.DownBlockTypes[i] = "CrossAttnDownBlock2D"
			c.UpBlockTypes[levels-1-i] = "CrossAttnUpBlock2D"
			c.UseLinearProjection = len(proj) == 2
			if k, ok := shape(fmt.Sprintf("input_blocks.%d.1.transformer_blocks.0.attn2.to_k.weight", idx)); ok {
				c.CrossAttentionDim = k[1]
			}
		}
	}
	inferSDXL(f, &c)
	c.Heads = heads(c.BlockOutChannels)
	c.SampleSize = 64
	return c, c.Validate()
}

// inferSDXL reads what SDXL UNets add: the depth of each level's transformers
// (a level without attention gets 1, except the last, whose entry the middle
// block uses) and the text_time conditioning from label_emb's input width.
func inferSDXL(f *weights.File, c *Config) {
	depth := map[string]int{} // "input_blocks.N" or "middle_block" → transformer blocks
	for _, n := range f.Names() {
		if g := transformerBlockName.FindStringSubmatch(n); g != nil {
			k, _ := strconv.Atoi(g[2])
			depth[g[1]] = max(depth[g[1]], k+1)
		}
	}
	levels, L := c.Levels(), c.LayersPerBlock
	perBlock := make(PerBlock, levels)
	deeper := false
	for i := range perBlock {
		perBlock[i] = max(1, depth[fmt.Sprintf("input_blocks.%d", (L+1)*i+1)])
		if i == levels-1 && c.DownBlockTypes[i] == "DownBlock2D" {
			perBlock[i] = max(1, depth["middle_block"])
		}
		deeper = deeper || perBlock[i] > 1
	}
	if deeper {
		c.TransformerLayersPerBlock = perBlock
	}
	if info, ok := f.Info(Prefix + "label_emb.0.0.weight"); ok && len(info.Shape) == 2 {
		c.AdditionEmbedType = TextTime
		c.AdditionTimeEmbedDim = 256 // not in the file; convert_from_ckpt.py assumes it for SDXL too
		c.ProjectionClassEmbeddingsInputDim = info.Shape[1]
	}
}
