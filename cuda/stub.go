package cuda

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// New would open the first GPU. The kernels and their launchers are not in this
// tree yet (issue 4), so every build reports that it has no CUDA support.
func New() (tensor.Backend, error) {
	return nil, fmt.Errorf("cuda: this build of rfnet-native has no CUDA backend; use --device cpu: %w", tensor.ErrNoDevice)
}
