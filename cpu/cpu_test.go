package cpu_test

import (
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

func TestConformance(t *testing.T) { backendtest.RunAll(t, cpu.New()) }

// TestParityFloat32 runs the device parity suite on the CPU's own float32
// path against its float64 path: the runner the CUDA backend is held to.
func TestParityFloat32(t *testing.T) {
	backendtest.RunParity(t, cpu.New(), cpu.New(), tensor.Float32, backendtest.ParityTol[tensor.Float32])
}
