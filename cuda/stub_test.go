//go:build !cuda

package cuda

import (
	"errors"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// A binary built without the cuda tag says how to get the backend and that
// the CPU works; callers can test for tensor.ErrNoDevice.
func TestStubSaysHowToBuild(t *testing.T) {
	_, err := New(Options{})
	if !errors.Is(err, tensor.ErrNoDevice) || !strings.Contains(err.Error(), "make cuda") {
		t.Fatalf("New() error %v", err)
	}
}
