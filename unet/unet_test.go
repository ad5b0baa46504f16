package unet

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// loadTiny loads a reference model's UNet from its diffusers folder or from the
// single file (with the folder's config: tiny widths break the head conventions).
func loadTiny(t testing.TB, model string, single bool, d tensor.DType) *UNet {
	t.Helper()
	c, err := LoadConfig(fixtures.Path("models", model, "unet", "config.json"), SD14())
	if err != nil {
		t.Fatal(err)
	}
	var m *weights.Mapping
	if single {
		file := model
		if model == "tiny-sd2-v" {
			file = "tiny-sd2" // the same weights
		}
		f, err := weights.Open(fixtures.Path("models", file+".safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		m = MapSingleFile(f, c)
	} else {
		f, err := weights.Open(fixtures.Path("models", model, "unet", "diffusion_pytorch_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		m = MapFolder(f)
	}
	src := weights.NewSource("unet", m, cpu.New(), d)
	u := Load(src, c)
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUNetMatchesReference(t *testing.T) {
	for _, model := range []string{"tiny-sd1", "tiny-sd2", "tiny-sd2-v"} {
		want := fixtures.Tensors(t, model+"-components")
		ts := want("timesteps").Float64s()
		for _, single := range []bool{false, true} {
			for _, d := range []tensor.DType{tensor.Float32, tensor.Float64} {
				u := loadTiny(t, model, single, d)
				got, err := u.Forward(want("sample").To(d), ts, want("context").To(d), nil)
				if err != nil {
					t.Fatal(err)
				}
				if e := fixtures.RelL2(got, want("unet_out")); !(e < 1e-5) {
					t.Errorf("%s single=%v %s: relative L2 error %.3g", model, single, d, e)
				}
			}
		}
	}
}

// The hook sees every cross-attention layer, named as RFNet names them, with
// probabilities [B, heads, H·W, 77] that sum to 1 over the tokens; stopping at a
// layer ends the forward pass there.
func TestCrossAttentionHook(t *testing.T) {
	u := loadTiny(t, "tiny-sd2", false, tensor.Float64)
	want := fixtures.Tensors(t, "tiny-sd2-components")
	var keys []string
	hook := func(l Layer, p *tensor.Tensor) bool {
		key := l.Key
		if l.H*l.W != p.Dim(2) {
			t.Fatalf("%s: grid %dx%d for %d queries", key, l.H, l.W, p.Dim(2))
		}
		keys = append(keys, fmt.Sprintf("%s %v", key, p.Shape()))
		sums := p.Sum(-1).Float64s()
		for _, s := range sums {
			if math.Abs(s-1) > 1e-9 {
				t.Fatalf("%s: probabilities sum to %v", key, s)
			}
		}
		return false
	}
	out, err := u.Forward(want("sample"), want("timesteps").Float64s(), want("context"), hook)
	if err != nil || out == nil {
		t.Fatal(err)
	}
	wantKeys := []string{
		"down.0.0.0 [2 2 64 77]", "down.0.1.0 [2 2 64 77]", "down.1.0.0 [2 2 16 77]", "down.1.1.0 [2 2 16 77]",
		"down.2.0.0 [2 4 4 77]", "down.2.1.0 [2 4 4 77]", "mid.0.0.0 [2 4 1 77]",
		"up.1.0.0 [2 4 4 77]", "up.1.1.0 [2 4 4 77]", "up.1.2.0 [2 4 4 77]",
		"up.2.0.0 [2 2 16 77]", "up.2.1.0 [2 2 16 77]", "up.2.2.0 [2 2 16 77]",
		"up.3.0.0 [2 2 64 77]", "up.3.1.0 [2 2 64 77]", "up.3.2.0 [2 2 64 77]",
	}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("layers %q\nwant %q", keys, wantKeys)
	}
	var listed []string
	for _, l := range u.CrossAttentionLayers(8, 8) {
		listed = append(listed, fmt.Sprintf("%s [2 %d %d 77]", l.Key, map[bool]int{true: 4, false: 2}[l.H <= 2], l.H*l.W))
	}
	if !slices.Equal(listed, wantKeys) {
		t.Fatalf("CrossAttentionLayers %q\nwant %q", listed, wantKeys)
	}
	keys = nil
	out, err = u.Forward(want("sample"), want("timesteps").Float64s(), want("context"), func(l Layer, p *tensor.Tensor) bool {
		keys = append(keys, l.Key)
		return l.Key == "up.1.2.0"
	})
	if err != ErrStopped || out != nil || keys[len(keys)-1] != "up.1.2.0" || len(keys) != 10 {
		t.Fatalf("stop at up.1.2.0: err %v, out %v, layers %v", err, out, keys)
	}
}
