package sam

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

func readImage(t testing.TB, name string) RGB {
	t.Helper()
	f, err := os.Open(fixtures.Path("sam", "images", name+".png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return FromImage(img)
}

// At the tiny model's size, the resize equals PIL's byte for byte and the pixel
// values and scaled points equal SamProcessor's.
func TestPreprocessMatchesProcessor(t *testing.T) {
	for _, c := range readCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			ref := reference(t, c.Name)
			img := readImage(t, c.Image)
			p, err := Preprocess(img, 128)
			if err != nil {
				t.Fatal(err)
			}
			want := ref("resized").Float64s()
			got := ResizeBilinear(img, p.ResizedW, p.ResizedH)
			if len(want) != len(got.Pix) {
				t.Fatalf("resized to %dx%d, reference has %d values", p.ResizedW, p.ResizedH, len(want))
			}
			for i, v := range got.Pix {
				if float64(v) != want[i] {
					t.Fatalf("resize: byte %d is %d, PIL's is %g", i, v, want[i])
				}
			}
			worst := 0.0
			for i, v := range ref("pixel_values").Float64s() {
				worst = math.Max(worst, math.Abs(float64(p.Pixels[i])-v))
			}
			if worst != 0 {
				t.Errorf("pixel values differ from the processor's by up to %g", worst)
			}
			pts := ref("points").Float64s()
			for i, pt := range c.Points {
				s, err := p.ScalePoint(pt[0], pt[1])
				if err != nil {
					t.Fatal(err)
				}
				if s[0] != pts[2*i] || s[1] != pts[2*i+1] {
					t.Errorf("point %d scaled to %v, processor's %v", i, s, pts[2*i:2*i+2])
				}
			}
		})
	}
}

// At the released 1024 longest side (up- and downscaling, both axes), a strong
// shrink and an odd size, the resize is PIL's byte for byte (resize.json holds
// the SHA-256 of PIL's output).
func TestResizeMatchesPIL(t *testing.T) {
	raw, err := os.ReadFile(fixtures.Path("sam", "resize.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sums []struct {
		Image                  string
		Longest, Height, Width int
		SHA256                 string
	}
	if err := json.Unmarshal(raw, &sums); err != nil {
		t.Fatal(err)
	}
	for _, s := range sums {
		img := readImage(t, s.Image)
		h, w := PreprocessShape(img.Height, img.Width, s.Longest)
		if h != s.Height || w != s.Width {
			t.Errorf("%s: %dx%d, PIL resized to %dx%d", s.Image, w, h, s.Width, s.Height)
			continue
		}
		sum := sha256.Sum256(ResizeBilinear(img, w, h).Pix)
		if got := hex.EncodeToString(sum[:]); got != s.SHA256 {
			t.Errorf("%s at %dx%d: SHA-256 %s, PIL's %s", s.Image, w, h, got, s.SHA256)
		}
	}
}

// maskMismatch is the fraction of pixels where the thresholded masks differ.
func maskMismatch(got []float32, want []float64) float64 {
	n := 0
	for i, v := range want {
		if (got[i] > 0) != (v > 0) {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

// maxMaskMismatch is issue 24's bound on masks that differ after thresholding
// (pixels at the boundary).
const maxMaskMismatch = 0.001

// Post-processing the reference's low-resolution logits gives its masks.
func TestPostProcessMatchesProcessor(t *testing.T) {
	for _, c := range readCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			ref := reference(t, c.Name)
			img := readImage(t, c.Image)
			p, _ := Preprocess(img, 128)
			got := p.PostProcess(ref("low_res_logits").To(tensor.Float32))
			want := ref("masks")
			assertRelL2(t, "masks", tensor.FromFloat32(cpu.New(), tensor.Float64, want.Shape(), got), want, 1e-6)
			if f := maskMismatch(got, want.Float64s()); f > 0 {
				t.Errorf("%.3g%% of mask pixels differ after thresholding", 100*f)
			}
		})
	}
}

// From the PNG to the masks at the input size, through the tiny model.
func TestSegmentMatchesReference(t *testing.T) {
	m := loadTiny(t, tensor.Float32)
	for _, c := range readCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			ref := reference(t, c.Name)
			p, err := Preprocess(readImage(t, c.Image), m.Config.Vision.ImageSize)
			if err != nil {
				t.Fatal(err)
			}
			prompt := Prompt{Labels: c.Labels}
			for _, pt := range c.Points {
				s, err := p.ScalePoint(pt[0], pt[1])
				if err != nil {
					t.Fatal(err)
				}
				prompt.Points = append(prompt.Points, s)
			}
			low, iou, err := m.Predict(m.EmbedImage(p.Tensor(cpu.New(), tensor.Float32)), prompt, true)
			if err != nil {
				t.Fatal(err)
			}
			assertRelL2(t, "iou", iou.Reshape(3), ref("iou"), parityTol)
			want := ref("masks")
			got := p.PostProcess(low.Reshape(low.Shape()[1:]...))
			assertRelL2(t, "masks", tensor.FromFloat32(cpu.New(), tensor.Float64, want.Shape(), got), want, parityTol)
			if f := maskMismatch(got, want.Float64s()); f > maxMaskMismatch {
				t.Errorf("%.3g%% of mask pixels differ after thresholding", 100*f)
			} else {
				t.Logf("%.3g%% of mask pixels differ after thresholding", 100*f)
			}
		})
	}
}

func TestPointOutsideTheImageNamesItsSize(t *testing.T) {
	p, err := Preprocess(readImage(t, "wide"), 128)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range [][2]float64{{200, 10}, {-1, 10}, {10, 120}} {
		if _, err := p.ScalePoint(pt[0], pt[1]); err == nil || !strings.Contains(err.Error(), "200x120") {
			t.Errorf("point %v: error %v, want one naming 200x120", pt, err)
		}
	}
	if _, err := p.ScalePoint(199.5, 119.5); err != nil {
		t.Errorf("point inside: %v", err)
	}
}
