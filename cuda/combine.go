//go:build cuda

package cuda

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// maxCombineRows bounds Combine's rows: one grid row each (a grid's y extent).
const maxCombineRows = 65535

// Combine returns rows linear combinations of the k slices of x [k, n],
// the coefficients [rows, k] read in float32 from the device when the kernel
// runs (kernels/combine.cu).
func (g *Backend) Combine(coef, x tensor.Buffer, rows, k, n int) tensor.Buffer {
	cd, xd := dev("combine", coef), dev("combine", x)
	d := same("combine", xd)
	if cd.dtype != tensor.Float32 {
		panic(fmt.Sprintf("cuda: combine: coefficients of %s, want f32", cd.dtype))
	}
	need("combine", cd, rows*k)
	need("combine", xd, k*n)
	if rows > maxCombineRows {
		panic(fmt.Sprintf("cuda: combine: %d rows, at most %d", rows, maxCombineRows))
	}
	y := g.newBuffer(d, rows*n)
	l := linear(int64(n))
	l.grid[1] = rows
	g.run("combine"+suffix(d), l, new(args).ptr(y.ptr).ptr(cd.ptr).ptr(xd.ptr).i32(int32(k)).i64(int64(n)),
		fmt.Sprintf("combine of %d×%d slices of %d", rows, k, n))
	return y
}
