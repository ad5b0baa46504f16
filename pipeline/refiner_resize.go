package pipeline

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// ResizeLanczos resizes im to w×h as Pillow's Image.resize((w, h),
// Image.LANCZOS) does for 8-bit RGB, byte for byte: the refiner's input is
// resized so (RFNet's pass takes its 512² image to 1024², diffusers'
// VaeImageProcessor resizes with the same filter). Pillow (Resample.c)
// filters the rows, then the columns, each with Lanczos-3 widened by the
// downscaling factor, coefficients normalized per output pixel and held in
// 22-bit fixed point, and rounds and clips to 8 bits after each pass. Alpha
// is dropped.
func ResizeLanczos(im image.Image, w, h int) (*image.RGBA, error) {
	r := im.Bounds()
	if w < 1 || h < 1 || r.Dx() < 1 || r.Dy() < 1 {
		return nil, fmt.Errorf("pipeline: resize %dx%d to %dx%d", r.Dx(), r.Dy(), w, h)
	}
	// src: 3 bytes per pixel, row after row; Pillow's RGB of an image with
	// alpha keeps the colour as stored, not premultiplied.
	inW, inH := r.Dx(), r.Dy()
	src := make([]uint8, 3*inW*inH)
	for y := 0; y < inH; y++ {
		for x := 0; x < inW; x++ {
			c := color.NRGBAModel.Convert(im.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA)
			copy(src[3*(y*inW+x):], []uint8{c.R, c.G, c.B})
		}
	}
	vert := lanczosCoeffs(inH, h)
	// Rows the vertical pass reads: the horizontal pass only makes those.
	first := vert.bounds[0]
	last := vert.bounds[2*(h-1)] + vert.bounds[2*(h-1)+1]
	rows, rowsH := src, inH
	if w != inW {
		horiz := lanczosCoeffs(inW, w)
		rowsH = last - first
		rows = make([]uint8, 3*w*rowsH)
		for y := 0; y < rowsH; y++ {
			for x := 0; x < w; x++ {
				lo, n := horiz.bounds[2*x], horiz.bounds[2*x+1]
				k := horiz.k[x*horiz.size:]
				for ch := 0; ch < 3; ch++ {
					ss := int64(1) << (lanczosPrecision - 1)
					for i := 0; i < n; i++ {
						ss += int64(src[3*((y+first)*inW+lo+i)+ch]) * int64(k[i])
					}
					rows[3*(y*w+x)+ch] = clip8(ss)
				}
			}
		}
		for i := 0; i < h; i++ {
			vert.bounds[2*i] -= first
		}
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		lo, n := vert.bounds[2*y], vert.bounds[2*y+1]
		k := vert.k[y*vert.size:]
		for x := 0; x < w; x++ {
			var c [3]uint8
			for ch := 0; ch < 3; ch++ {
				if h == inH { // Pillow skips a pass that changes no size
					c[ch] = rows[3*(y*w+x)+ch]
					continue
				}
				ss := int64(1) << (lanczosPrecision - 1)
				for i := 0; i < n; i++ {
					ss += int64(rows[3*((lo+i)*w+x)+ch]) * int64(k[i])
				}
				c[ch] = clip8(ss)
			}
			out.SetRGBA(x, y, color.RGBA{c[0], c[1], c[2], 255})
		}
	}
	return out, nil
}

// lanczosPrecision is Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2.
const lanczosPrecision = 22

// coeffs are one axis' filter: output pixel i reads bounds[2i+1] inputs from
// bounds[2i], weighted by k[i·size:].
type coeffs struct {
	bounds []int
	k      []int32
	size   int
}

// lanczosCoeffs is Pillow's precompute_coeffs and normalize_coeffs_8bpc for
// the Lanczos filter (support 3) from inSize to outSize over the whole axis.
func lanczosCoeffs(inSize, outSize int) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterScale := math.Max(scale, 1)
	support := 3 * filterScale
	size := int(math.Ceil(support))*2 + 1
	c := coeffs{bounds: make([]int, 2*outSize), k: make([]int32, outSize*size), size: size}
	w := make([]float64, size)
	ss := 1 / filterScale // Pillow multiplies by the reciprocal: the same rounding
	for i := 0; i < outSize; i++ {
		center := (float64(i) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), inSize) - lo
		sum := 0.0
		for x := 0; x < hi; x++ {
			w[x] = lanczos3((float64(x+lo) - center + 0.5) * ss)
			sum += w[x]
		}
		for x := 0; x < hi; x++ {
			if sum != 0 {
				w[x] /= sum
			}
			// Rounded half away from zero, as Pillow's (int)(±0.5 + v·2²²).
			c.k[i*size+x] = int32(math.Trunc(w[x]*(1<<lanczosPrecision) + math.Copysign(0.5, w[x])))
		}
		c.bounds[2*i], c.bounds[2*i+1] = lo, hi
	}
	return c
}

// lanczos3 is sinc(x)·sinc(x/3) on [-3, 3).
func lanczos3(x float64) float64 {
	if x < -3 || x >= 3 {
		return 0
	}
	return sinc(x) * sinc(x/3)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

// clip8 is Pillow's clip8: the fixed-point sum back to a byte.
func clip8(ss int64) uint8 {
	switch {
	case ss >= 1<<lanczosPrecision<<8:
		return 255
	case ss <= 0:
		return 0
	}
	return uint8(ss >> lanczosPrecision)
}
