//go:build cuda

package cuda_test

import (
	"testing"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// tensor.Scoped hands back every buffer its call allocated but the result's
// (a view of an intermediate here), scopes nest, a panic frees everything,
// and a steady loop of scoped calls takes nothing more from the driver.
func TestScopedCallsFreeIntermediates(t *testing.T) {
	g := device(t)
	mem := g.(interface {
		MemoryStats() (inUse, peak int64)
		AllocStats() cuda.AllocStats
	})
	x := backendtest.Randn(g, tensor.Float32, 1, 4, 256)
	want := x.Affine(2, 1).SiLU().Reshape(1024).Float64s()
	syncOK(t, g)
	inUse := func() int64 { n, _ := mem.MemoryStats(); return n }
	call := func() *tensor.Tensor {
		return tensor.Scoped(g, func() *tensor.Tensor {
			a := x.Affine(2, 1)
			inner := tensor.Scoped(g, func() *tensor.Tensor { return a.Affine(3, 0).Affine(1.0/3, 0).SiLU() })
			_ = a.Mul(inner) // garbage of the outer scope
			return inner.Reshape(1024)
		})
	}
	before := inUse()
	out := call()
	backendtest.AssertCloseValues(t, out.Float64s(), want, 1e-6)
	// One 1024-float block (rounded to 4 KiB by the allocator) is all that is left.
	if got := inUse() - before; got != 4096 {
		t.Fatalf("a scoped call left %d bytes in use, want the result's 4096", got)
	}
	out.Free()
	drivers := mem.AllocStats().DriverAllocs
	for range 20 {
		call().Free()
	}
	syncOK(t, g)
	if n := mem.AllocStats().DriverAllocs - drivers; n != 0 || inUse() != before {
		t.Fatalf("20 scoped calls: %d driver allocations, %d bytes left in use; want 0 and 0", n, inUse()-before)
	}
	func() {
		defer func() { _ = recover() }()
		tensor.Scoped(g, func() *tensor.Tensor {
			x.Affine(5, 0)
			panic("stop")
		})
	}()
	if inUse() != before {
		t.Fatalf("a panicking scoped call left %d bytes in use", inUse()-before)
	}
	// Outside any scope, nothing is recorded: an ordinary tensor lives on.
	y := x.Affine(1, 1)
	tensor.Scoped(g, func() *tensor.Tensor { return y.Affine(1, 0) }).Free()
	backendtest.AssertCloseValues(t, y.Float64s(), x.Affine(1, 1).Float64s(), 0)
}
