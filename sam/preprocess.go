package sam

import (
	"fmt"
	"image"
	"image/color"

	"github.com/rfnet/rfnet-native/tensor"
)

// RGB is an 8-bit RGB image: Pix holds Height rows of Width pixels, 3 bytes each.
type RGB struct {
	Width, Height int
	Pix           []uint8
}

// FromImage copies img's colours (alpha dropped, as PIL's convert("RGB") does).
func FromImage(img image.Image) RGB {
	r := img.Bounds()
	out := RGB{Width: r.Dx(), Height: r.Dy(), Pix: make([]uint8, 0, r.Dx()*r.Dy()*3)}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			out.Pix = append(out.Pix, c.R, c.G, c.B)
		}
	}
	return out
}

// SamProcessor's normalization: ImageNet's mean and std, after rescaling by 1/255.
var (
	pixelMean = [3]float32{0.485, 0.456, 0.406}
	pixelStd  = [3]float32{0.229, 0.224, 0.225}
)

// PreprocessShape is the size of an h×w image resized so that its longest side is
// longest (SamImageProcessor._get_preprocess_shape: sides rounded as int(x + 0.5)).
func PreprocessShape(h, w, longest int) (newH, newW int) {
	scale := float64(longest) / float64(max(h, w))
	return int(float64(h)*scale + 0.5), int(float64(w)*scale + 0.5)
}

// Processed is an image ready for the encoder, with the sizes post-processing needs.
type Processed struct {
	// Pixels are [3, Size, Size], channel-major, zero-padded at the bottom and right.
	Pixels               []float32
	Size                 int
	ResizedH, ResizedW   int
	OriginalH, OriginalW int
}

// Preprocess is SamProcessor (transformers v4.29.2) on one image: resize the
// longest side to size with PIL's bilinear filter, rescale by 1/255, normalize,
// pad with zeros to size×size. The original SAM code normalizes 0..255 values with
// mean and std times 255 instead; transformers' order is followed, with its
// float32 rounding (the rescale is a float64 product stored as float32).
func Preprocess(img RGB, size int) (Processed, error) {
	if img.Width < 1 || img.Height < 1 || len(img.Pix) != img.Width*img.Height*3 {
		return Processed{}, fmt.Errorf("sam: image: %dx%d with %d bytes of RGB", img.Width, img.Height, len(img.Pix))
	}
	h, w := PreprocessShape(img.Height, img.Width, size)
	resized := ResizeBilinear(img, w, h)
	p := Processed{Pixels: make([]float32, 3*size*size), Size: size, ResizedH: h, ResizedW: w,
		OriginalH: img.Height, OriginalW: img.Width}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				v := float32(float64(resized.Pix[(y*w+x)*3+c]) * (1.0 / 255))
				p.Pixels[(c*size+y)*size+x] = (v - pixelMean[c]) / pixelStd[c]
			}
		}
	}
	return p, nil
}

// Tensor returns the pixels as [1, 3, Size, Size] on backend b in dtype d.
func (p Processed) Tensor(b tensor.Backend, d tensor.DType) *tensor.Tensor {
	return tensor.FromFloat32(b, d, tensor.Shape{1, 3, p.Size, p.Size}, p.Pixels)
}

// ScalePoint maps a point of the original image (x, y in pixels) to the encoder's
// input, as SamProcessor scales input_points (by the resized over the original
// size, per axis). A point outside the image is an error naming its size.
func (p Processed) ScalePoint(x, y float64) ([2]float64, error) {
	if x < 0 || y < 0 || x >= float64(p.OriginalW) || y >= float64(p.OriginalH) {
		return [2]float64{}, fmt.Errorf("sam: point (%g, %g) is outside the %dx%d image", x, y, p.OriginalW, p.OriginalH)
	}
	return [2]float64{x * (float64(p.ResizedW) / float64(p.OriginalW)), y * (float64(p.ResizedH) / float64(p.OriginalH))}, nil
}

// ScaleBox maps a box of the original image (x0, y0, x1, y1 in pixels) to the
// encoder's input as SamProcessor scales input_boxes (both corners as points).
// A box that is not inside the image with x0 < x1 and y0 < y1 is an error.
func (p Processed) ScaleBox(b [4]float64) ([4]float64, error) {
	if b[0] < 0 || b[1] < 0 || b[2] > float64(p.OriginalW) || b[3] > float64(p.OriginalH) || b[0] >= b[2] || b[1] >= b[3] {
		return [4]float64{}, fmt.Errorf("sam: box (%g, %g, %g, %g) is not a box inside the %dx%d image", b[0], b[1], b[2], b[3], p.OriginalW, p.OriginalH)
	}
	sx, sy := float64(p.ResizedW)/float64(p.OriginalW), float64(p.ResizedH)/float64(p.OriginalH)
	return [4]float64{b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy}, nil
}
