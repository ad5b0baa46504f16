package backendtest

import (
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// testTape checks the tape's contract beyond individual rules.
func testTape(t *testing.T, b tensor.Backend) {
	d := computeDTypes(b)[0]
	x := Randn(b, d, 1, 2, 3)
	w := Randn(b, d, 2, 3, 3)

	t.Run("untracked ops record nothing", func(t *testing.T) {
		tape := tensor.NewTape()
		z := tape.Track(x)
		_ = x.Mul(x).Sum()
		if tape.Len() != 1 {
			t.Fatalf("tape has %d nodes after ops on untracked tensors, want 1 (the tracked input)", tape.Len())
		}
		_ = z.Square()
		if tape.Len() != 2 {
			t.Fatalf("tape has %d nodes, want 2", tape.Len())
		}
	})

	t.Run("unused input gets zeros and reuse accumulates", func(t *testing.T) {
		tape := tensor.NewTape()
		a, c := tape.Track(x), tape.Track(w)
		loss := a.Add(a).Sum() // d/da = 2
		g, err := tape.Backward(loss, a, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range g[0].Float64s() {
			if v != 2 {
				t.Fatalf("gradient of a+a: %v, want 2 everywhere", g[0].Float64s())
			}
		}
		for _, v := range g[1].Float64s() {
			if v != 0 {
				t.Fatalf("gradient of an unused input: %v, want zeros", g[1].Float64s())
			}
		}
		if tape.Len() != 0 {
			t.Fatal("backward must drop the tape")
		}
		if _, err := tape.Backward(loss, a); err == nil {
			t.Fatal("a second backward on an ended tape must fail")
		}
	})

	t.Run("errors", func(t *testing.T) {
		tape := tensor.NewTape()
		a := tape.Track(x)
		if _, err := tape.Backward(a.Square(), a); err == nil || !strings.Contains(err.Error(), "one element") {
			t.Fatalf("non-scalar loss: %v", err)
		}
		if _, err := tape.Backward(a.Sum(), x); err == nil || !strings.Contains(err.Error(), "not tracked") {
			t.Fatalf("untracked wrt: %v", err)
		}
		if _, err := tape.Backward(x.Sum(), a); err == nil {
			t.Fatal("a loss that does not depend on the tape must fail")
		}
	})

	t.Run("tracked weights are refused", func(t *testing.T) {
		tape := tensor.NewTape()
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "input gradients only") {
				t.Fatalf("conv2d with a tracked weight: panic %v", r)
			}
		}()
		img := Randn(b, d, 3, 1, 3, 4, 4)
		img.Conv2d(tape.Track(w.Reshape(3, 3, 1, 1)), nil, 1, 0)
	})
}
