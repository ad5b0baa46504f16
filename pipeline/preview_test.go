package pipeline

import (
	"bytes"
	"image/png"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// A latent cell becomes one pixel through latentRGB: a cell of zeros is mid
// grey, one channel alone gives that channel's row.
func TestLatentPreview(t *testing.T) {
	h, w := 2, 3
	v := make([]float32, 4*h*w)
	v[(0*h+1)*w+2] = 1 // channel 0 at (x 2, y 1)
	raw, err := LatentPreview(tensor.FromFloat32(cpu.New(), tensor.Float32, tensor.Shape{1, 4, h, w}, v))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("size %v, want %dx%d", b, w, h)
	}
	r, g, b, _ := img.At(0, 0).RGBA()
	if r>>8 != 128 || g>>8 != 128 || b>>8 != 128 {
		t.Errorf("zeros: %d %d %d, want 128 grey", r>>8, g>>8, b>>8)
	}
	r, g, b, _ = img.At(2, 1).RGBA()
	want := [3]uint32{uint32(byte8(latentRGB[0][0])), uint32(byte8(latentRGB[0][1])), uint32(byte8(latentRGB[0][2]))}
	if [3]uint32{r >> 8, g >> 8, b >> 8} != want {
		t.Errorf("channel 0: %d %d %d, want %v", r>>8, g>>8, b>>8, want)
	}
	if _, err := LatentPreview(tensor.Zeros(cpu.New(), tensor.Float32, 1, 3, 2, 2)); err == nil {
		t.Error("a 3-channel tensor was previewed")
	}
}
