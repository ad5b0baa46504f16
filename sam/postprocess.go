package sam

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// PostProcess is SamProcessor.post_process_masks without the threshold: the
// low-resolution logits [k, h, w] are resized to the encoder's Size×Size, cropped
// to the resized image, and resized to the original image, both times bilinearly
// with half-pixel centres (torch's interpolate, align_corners=False). It returns
// [k, OriginalH, OriginalW] logits; a mask is where they are > 0 (see Binarize).
func (p Processed) PostProcess(lowRes *tensor.Tensor) []float32 {
	if lowRes.Rank() != 3 {
		panic(fmt.Sprintf("sam: post-process: logits %v, want [k, h, w]", lowRes.Shape()))
	}
	k, h, w := lowRes.Dim(0), lowRes.Dim(1), lowRes.Dim(2)
	up := Bilinear(lowRes.Float32s(), k, h, w, p.Size, p.Size)
	crop := make([]float32, 0, k*p.ResizedH*p.ResizedW)
	for m := 0; m < k; m++ {
		for y := 0; y < p.ResizedH; y++ {
			row := up[(m*p.Size+y)*p.Size:]
			crop = append(crop, row[:p.ResizedW]...)
		}
	}
	return Bilinear(crop, k, p.ResizedH, p.ResizedW, p.OriginalH, p.OriginalW)
}

// Binarize is the processor's mask_threshold of 0: logits > 0.
func Binarize(logits []float32) []bool {
	out := make([]bool, len(logits))
	for i, v := range logits {
		out[i] = v > 0
	}
	return out
}

// Bilinear resizes planes [n, h, w] to [n, oh, ow] as torch's upsample_bilinear2d
// on the CPU (align_corners=False, no antialias), in float32 as there: source
// index max((o+0.5)·in/out - 0.5, 0), weights 1-λ and λ, width first.
func Bilinear(src []float32, n, h, w, oh, ow int) []float32 {
	ys, xs := linearTaps(h, oh), linearTaps(w, ow)
	out := make([]float32, n*oh*ow)
	for m := 0; m < n; m++ {
		plane := src[m*h*w:]
		for oy, ty := range ys {
			r0, r1 := plane[ty.i0*w:], plane[ty.i1*w:]
			for ox, tx := range xs {
				t0 := r0[tx.i0]*tx.w0 + r0[tx.i1]*tx.w1
				t1 := r1[tx.i0]*tx.w0 + r1[tx.i1]*tx.w1
				out[(m*oh+oy)*ow+ox] = t0*ty.w0 + t1*ty.w1
			}
		}
	}
	return out
}

// linearTap is one output index's two source indices and weights.
type linearTap struct {
	i0, i1 int
	w0, w1 float32
}

// linearTaps follows torch's compute_indices_weights_linear (float32 scale).
func linearTaps(in, out int) []linearTap {
	scale := float32(in) / float32(out)
	taps := make([]linearTap, out)
	for o := range taps {
		real := scale*(float32(o)+0.5) - 0.5
		if real < 0 {
			real = 0
		}
		i0 := min(int(math.Floor(float64(real))), in-1)
		lambda := min(max(real-float32(i0), 0), 1)
		i1 := i0
		if i0 < in-1 {
			i1++
		}
		taps[o] = linearTap{i0: i0, i1: i1, w0: 1 - lambda, w1: lambda}
	}
	return taps
}
