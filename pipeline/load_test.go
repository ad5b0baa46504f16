package pipeline

import (
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

// The VAE's encoder is built only when asked for, and then encodes as
// diffusers does (the reference image, in [-1, 1], to its latents).
func TestVAEEncoderOnlyWhenAsked(t *testing.T) {
	o := LoadOptions{Backend: cpu.New(), DType: tensor.Float32}
	m, err := Load(fixtures.Path("models", "tiny-sd1"), o)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if m.Encoder != nil {
		t.Fatal("the encoder was built without LoadOptions.VAEEncoder")
	}
	o.VAEEncoder = true
	if m, err = Load(fixtures.Path("models", "tiny-sd1"), o); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := fixtures.Tensors(t, "tiny-sd1-components")
	got := m.EncodeImage(want("image").To(tensor.Float32).Affine(0.5, 0.5))
	if e := fixtures.RelL2(got, want("latents")); !(e < 1e-5) {
		t.Fatalf("encode: relative L2 error %.3g", e)
	}
}
