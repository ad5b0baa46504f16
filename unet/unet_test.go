package unet

import (
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
