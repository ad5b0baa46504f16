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
}

// reopenError checks a later New call's options against those the backend
// was opened with. The device and TF32 decide what every result is, so a call
// asking for others is an error rather than a backend that quietly is not
// what it asked for. Poison, a test aid that only fills new buffers, stays as
// the first call set it. Pure Go, so it is tested without a GPU.
func reopenError(opened, asked Options) error {
	if asked.Ordinal == opened.Ordinal && asked.TF32 == opened.TF32 {
		return nil
	}
	return fmt.Errorf("cuda: New(ordinal %d, TF32 %v): this process already opened the GPU with ordinal %d, TF32 %v (once per process: the driver state is global)",
		asked.Ordinal, asked.TF32, opened.Ordinal, opened.TF32)
}
