package pipeline

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// LoadRefinerFile builds the released single file already open, as
// LoadRefiner does from its path (bench-engine --refiner's random weights).
func TestLoadRefinerFileBuildsOpenFile(t *testing.T) {
	f, err := weights.Open(writeRefinerSingleFile(t, true))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := LoadRefinerFile(f, LoadOptions{Backend: tensor.Meta{}, DType: tensor.Float32, NoTokenizer: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Layout != LayoutSingleFile || r.UNetFile != f.Path() || r.Variant.UNet.CrossAttentionDim != SDXLRefiner().UNet.CrossAttentionDim {
		t.Fatalf("layout %s, unet file %s, cross-attention dim %d", r.Layout, r.UNetFile, r.Variant.UNet.CrossAttentionDim)
	}
}
