package pipeline

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/unet"
	"github.com/rfnet/rfnet-native/vae"
)

// Family is the model generation: it decides the text encoder and the
// tokenizer's padding.
type Family string

const (
	// SD1 is Stable Diffusion 1.x (CLIP ViT-L/14 text encoder).
	SD1 Family = "sd1"
	// SD2 is Stable Diffusion 2.x (OpenCLIP ViT-H/14 text encoder).
	SD2 Family = "sd2"
)

// singleFileHeads gives the UNet heads of a single file of family f, which its
// shapes do not record, by the family's convention: SD 1.x has SD14's 8 heads
// in every block, whatever its width; SD 2.x has heads 64 channels wide (for
// SD21Base's 320, 640, 1280 and 1280 channels: 5, 10, 20 and 20 heads).
func (f Family) singleFileHeads(blockOutChannels []int) unet.PerBlock {
	if f == SD1 {
		return SD14().UNet.Heads
	}
	heads := make(unet.PerBlock, len(blockOutChannels))
	for i, ch := range blockOutChannels {
		heads[i] = max(1, ch/64)
	}
	return heads
}

// Variant is everything about a model that its weights do not say.
type Variant struct {
	Name          string
	Family        Family
	UNet          unet.Config
	VAE           vae.Config
	Text          clip.Config
	Sched         sched.Config
	Pad           string // the tokenizer's padding token
	Width, Height int    // the native image size
}

// SD14 is CompVis/stable-diffusion-v1-4 (512², epsilon), the root variant.
func SD14() Variant {
	return Variant{Name: "sd14", Family: SD1, UNet: unet.SD14(), VAE: vae.SD(), Text: clip.ViTL14(),
		Sched: sched.SD(), Pad: clip.EndOfText, Width: 512, Height: 512}
}

// SD15 is runwayml/stable-diffusion-v1-5: the same architecture and configs as SD14.
func SD15() Variant {
	v := SD14()
	v.Name = "sd15"
	return v
}

// SD21Base is stabilityai/stable-diffusion-2-1-base (512², epsilon), per its config files.
func SD21Base() Variant {
	v := SD14()
	v.Name, v.Family = "sd21-base", SD2
	v.UNet.Heads = unet.PerBlock{5, 10, 20, 20} // upstream key: attention_head_dim
	v.UNet.CrossAttentionDim = 1024
	v.UNet.UseLinearProjection = true
	v.Text = clip.OpenCLIPH14() // conditions on the penultimate layer
	v.Pad = "!"
	return v
}

// SD21 differs from SD21Base only in size and training objective. The two have
// identical tensor names and shapes, so the weights alone cannot tell them apart.
func SD21() Variant {
	v := SD21Base()
	v.Name = "sd21"
	v.Width, v.Height = 768, 768
	v.UNet.UpcastAttention = true
	v.Sched.PredictionType = sched.VPrediction
	return v
}

var variants = map[string]func() Variant{
	"sd14": SD14, "sd15": SD15, "sd1": SD15,
	"sd21-base": SD21Base, "sd2-base": SD21Base, "sd20-base": SD21Base,
	"sd21": SD21, "sd2": SD21, "sd2-v": SD21, "sd21-v": SD21, "sd20": SD21,
}

// VariantByName returns a variant by name (LoadOptions.ModelType's).
func VariantByName(name string) (Variant, error) {
	ctor, ok := variants[strings.ToLower(name)]
	if !ok {
		names := make([]string, 0, len(variants))
		for n := range variants {
			names = append(names, n)
		}
		sort.Strings(names)
		return Variant{}, &OptionError{"ModelType", name, fmt.Errorf("no such model type (choose one of %s)", strings.Join(names, ", "))}
	}
	return ctor(), nil
}
