package pipeline

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return im
}

// ResizeLanczos gives Pillow's bytes (testdata/gen/make_lanczos.py: Pillow
// 9.4's Image.resize with LANCZOS) up and down, on one axis and on both.
func TestResizeLanczosMatchesPillow(t *testing.T) {
	for _, c := range []struct {
		src  string
		w, h int
	}{{"64x48", 96, 80}, {"64x48", 40, 24}, {"64x48", 64, 100}, {"64x48", 30, 48}, {"64x48", 128, 96}, {"48x64", 7, 9}} {
		name := fmt.Sprintf("lanczos-%s-to-%dx%d.png", c.src, c.w, c.h)
		t.Run(name, func(t *testing.T) {
			got, err := ResizeLanczos(readPNG(t, fixtures.Path("refiner", "refiner-input-"+c.src+".png")), c.w, c.h)
			if err != nil {
				t.Fatal(err)
			}
			want := readPNG(t, fixtures.Path("refiner", name))
			if want.Bounds() != got.Bounds() {
				t.Fatalf("bounds %v, want %v", got.Bounds(), want.Bounds())
			}
			differ := 0
			for y := 0; y < c.h; y++ {
				for x := 0; x < c.w; x++ {
					r1, g1, b1, _ := got.At(x, y).RGBA()
					r2, g2, b2, _ := want.At(x, y).RGBA()
					if r1 != r2 || g1 != g2 || b1 != b2 {
						if differ == 0 {
							t.Errorf("(%d, %d): %v, want %v", x, y, got.At(x, y), want.At(x, y))
						}
						differ++
					}
				}
			}
			if differ > 0 {
				t.Errorf("%d of %d pixels differ", differ, c.w*c.h)
			}
		})
	}
	if _, err := ResizeLanczos(image.NewRGBA(image.Rect(0, 0, 4, 4)), 0, 8); err == nil {
		t.Error("a zero width was accepted")
	}
}
