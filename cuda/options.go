package cuda

import (
	"fmt"
	"os"
)

// Options configure the GPU backend (a build without the cuda tag has no
// backend to configure: its New reports that).
type Options struct {
	// Ordinal is the device number.
	Ordinal int
	// TF32 lets float32 GEMMs use TF32 tensor cores (about 1e-3 relative error).
	TF32 bool
	// Poison fills every new buffer with NaN, so a kernel that leaves an
	// element unwritten fails the parity tests.
	Poison bool
	// NoGraphs turns CUDA graphs off (as RFNET_CUDA_GRAPHS=0 does): the
	// denoising loop launches every kernel of every UNet call itself.
	NoGraphs bool
}

// reopenError checks a later New call's options against the first call's.
// The device and TF32 decide what every result is, so a call asking for
// others is an error rather than a backend that quietly is not what it asked
// for. Poison, a test aid that only fills new buffers, and NoGraphs, which
// changes how work is launched and not what it computes, stay as the first
// call set them. Pure Go, so it is tested without a GPU.
func reopenError(first, asked Options) error {
	if asked.Ordinal == first.Ordinal && asked.TF32 == first.TF32 {
		return nil
	}
	return fmt.Errorf("cuda: New(ordinal %d, TF32 %v): the first New of this process asked for ordinal %d, TF32 %v, and the GPU is opened once per process (the driver state is global)",
		asked.Ordinal, asked.TF32, first.Ordinal, first.TF32)
}

// Conv2dPath is how the input gradient of convolutions runs: the implicit
// GEMM where it takes the shape, or im2col's path for every shape.
type Conv2dPath int

const (
	ConvImplicit Conv2dPath = iota // kernels/conv_implicit.cu for 3×3 kernels, stride 1, in f16 and bf16
	ConvIm2col                     // dcol = wᵀ·dy by GEMM, then col2im, for every shape
)

func (c Conv2dPath) String() string {
	switch c {
	case ConvImplicit:
		return "implicit"
	case ConvIm2col:
		return "im2col"
	}
	return fmt.Sprintf("Conv2dPath(%d)", int(c))
}

// convPathFromEnv reads RFNET_CONV ("implicit", the default, or "im2col":
// to time the two paths side by side, or to rule the implicit kernel out).
func convPathFromEnv() (Conv2dPath, error) {
	switch v := os.Getenv("RFNET_CONV"); v {
	case "", "implicit":
		return ConvImplicit, nil
	case "im2col":
		return ConvIm2col, nil
	default:
		return 0, fmt.Errorf("cuda: RFNET_CONV=%q: want implicit or im2col", v)
	}
}
