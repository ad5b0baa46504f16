package cuda

import "fmt"

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
