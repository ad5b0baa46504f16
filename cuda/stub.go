//go:build !cuda

package cuda

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// Compiled reports whether this binary has the CUDA backend (the cuda build tag).
const Compiled = false

// New reports that this binary was built without the CUDA backend.
func New(Options) (tensor.Backend, error) {
	return nil, fmt.Errorf("cuda: this binary was built without the CUDA backend (build it with `make cuda`), so only the CPU backend runs: %w", tensor.ErrNoDevice)
}
