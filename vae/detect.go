package vae

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/rfnet/rfnet-native/weights"
)

var encBlock = regexp.MustCompile(`^first_stage_model\.encoder\.down\.(\d+)\.block\.(\d+)\.conv1\.weight$`)

// InferConfig reads the autoencoder configuration of a single-file checkpoint
// from its shapes; the scaling factor (not in the file) is SD's 0.18215.
func InferConfig(f *weights.File) (Config, error) {
	c := SD()
	levels, layers := 0, 0
	for _, n := range f.Names() {
		if g := encBlock.FindStringSubmatch(n); g != nil {
			i, _ := strconv.Atoi(g[1])
			j, _ := strconv.Atoi(g[2])
			levels, layers = max(levels, i+1), max(layers, j+1)
		}
	}
	if levels == 0 {
		return Config{}, fmt.Errorf("vae: %s has no autoencoder (no %sencoder.down.* tensors)", f.Path(), Prefix)
	}
	c.LayersPerBlock = layers
	c.BlockOutChannels = make([]int, levels)
	for i := range c.BlockOutChannels {
		info, _ := f.Info(fmt.Sprintf("%sencoder.down.%d.block.0.conv1.weight", Prefix, i))
		if len(info.Shape) != 4 {
			return Config{}, fmt.Errorf("vae: %s: missing %sencoder.down.%d.block.0.conv1.weight", f.Path(), Prefix, i)
		}
		c.BlockOutChannels[i] = info.Shape[0]
	}
	if info, ok := f.Info(Prefix + "decoder.conv_in.weight"); ok && len(info.Shape) == 4 {
		c.LatentChannels = info.Shape[1]
	}
	if info, ok := f.Info(Prefix + "encoder.conv_in.weight"); ok && len(info.Shape) == 4 {
		c.InChannels = info.Shape[1]
	}
	if info, ok := f.Info(Prefix + "decoder.conv_out.weight"); ok && len(info.Shape) == 4 {
		c.OutChannels = info.Shape[0]
	}
	return c, c.Validate()
}
