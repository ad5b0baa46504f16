package backendtest

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// RunAll runs the whole conformance suite on b.
func RunAll(t *testing.T, b tensor.Backend) {
	t.Run("forward", func(t *testing.T) { testForward(t, b) })
	t.Run("memory", func(t *testing.T) { testMemory(t, b) })
	t.Run("tape", func(t *testing.T) { testTape(t, b) })
	t.Run("grad", func(t *testing.T) {
		if !b.Computes(tensor.Float64) {
			t.Skipf("%s does not compute in float64; its gradients are compared with the CPU backend's instead", b.Name())
		}
		for _, c := range gradCases(b) {
			t.Run(c.name, func(t *testing.T) { checkGrad(t, b, c) })
		}
	})
}
