package sam

import "math"

// resizePrecision is Pillow's PRECISION_BITS for 8-bit resampling (32-8-2): the
// filter weights are fixed-point numbers with 22 fraction bits.
const resizePrecision = 22

// ResizeBilinear resizes img to w×h as Pillow's Image.resize(..., BILINEAR) does
// for 8-bit RGB (libImaging/Resample.c, unchanged from Pillow 7 to 10): a
// triangle filter widened by the scale when shrinking (so it antialiases),
// weights normalized per output pixel and rounded to 22-bit fixed point, a
// horizontal pass into 8-bit rows, then a vertical pass. transformers'
// SamProcessor resizes through it, so this reproduces its pixels bit for bit.
func ResizeBilinear(img RGB, w, h int) RGB {
	if w == img.Width && h == img.Height {
		return RGB{Width: w, Height: h, Pix: append([]uint8(nil), img.Pix...)}
	}
	out := img
	if w != img.Width {
		out = resamplePass(out, w, true)
	}
	if h != img.Height {
		out = resamplePass(out, h, false)
	}
	return out
}

// filterTaps are one output pixel's source range [first, first+len(weights)) and
// fixed-point weights.
type filterTaps struct {
	first   int
	weights []int32
}

// bilinearTaps is Pillow's precompute_coeffs with the bilinear filter (support 1)
// followed by normalize_coeffs_8bpc. The float64 arithmetic and the truncating
// int conversions follow the C code step by step.
func bilinearTaps(inSize, outSize int) []filterTaps {
	scale := float64(inSize) / float64(outSize)
	filterScale := math.Max(scale, 1)
	support := 1.0 * filterScale
	taps := make([]filterTaps, outSize)
	for xx := range taps {
		center := (float64(xx) + 0.5) * scale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		k := make([]float64, xmax)
		ww := 0.0
		for x := range k {
			k[x] = triangle((float64(x+xmin) - center + 0.5) / filterScale)
			ww += k[x]
		}
		fixed := make([]int32, xmax)
		for x := range k {
			if ww != 0 {
				k[x] /= ww
			}
			if k[x] < 0 {
				fixed[x] = int32(-0.5 + k[x]*(1<<resizePrecision))
			} else {
				fixed[x] = int32(0.5 + k[x]*(1<<resizePrecision))
			}
		}
		taps[xx] = filterTaps{first: xmin, weights: fixed}
	}
	return taps
}

// triangle is the bilinear filter: 1-|x| on (-1, 1).
func triangle(x float64) float64 {
	x = math.Abs(x)
	if x < 1 {
		return 1 - x
	}
	return 0
}

// resamplePass resizes one axis: the width when horizontal, else the height.
func resamplePass(img RGB, size int, horizontal bool) RGB {
	inSize := img.Height
	out := RGB{Width: img.Width, Height: size}
	if horizontal {
		inSize = img.Width
		out = RGB{Width: size, Height: img.Height}
	}
	out.Pix = make([]uint8, out.Width*out.Height*3)
	taps := bilinearTaps(inSize, size)
	for y := 0; y < out.Height; y++ {
		for x := 0; x < out.Width; x++ {
			var t filterTaps
			var step, base int
			if horizontal {
				t, step, base = taps[x], 3, y*img.Width*3 // along a row
			} else {
				t, step, base = taps[y], img.Width*3, x*3 // down a column
			}
			for ch := 0; ch < 3; ch++ {
				ss := int32(1) << (resizePrecision - 1) // rounds the final shift
				src := base + t.first*step + ch
				for i, k := range t.weights {
					ss += int32(img.Pix[src+i*step]) * k
				}
				out.Pix[(y*out.Width+x)*3+ch] = clip8(ss)
			}
		}
	}
	return out
}

// clip8 is Pillow's clip8: the fixed-point sum to 0..255.
func clip8(ss int32) uint8 {
	v := ss >> resizePrecision
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}
