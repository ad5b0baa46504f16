//go:build cuda

package cuda

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// ReduceSum sums x [outer, n, inner] over its middle axis.
func (g *Backend) ReduceSum(x tensor.Buffer, outer, n, inner int) tensor.Buffer {
	xd := dev("reduce_sum", x)
	d := same("reduce_sum", xd)
	need("reduce_sum", xd, outer*n*inner)
	y := g.newBuffer(d, outer*inner)
	what := fmt.Sprintf("reduce_sum of [%d, %d, %d] over axis 1", outer, n, inner)
	if inner == 1 {
		g.run("reduce_rows"+suffix(d), launch{grid: [3]int{outer, 1, 1}, block: rowThreads(n)}, new(args).ptr(y.ptr).ptr(xd.ptr).i64(int64(n)), what)
	} else {
		g.run("reduce_cols"+suffix(d), linear(int64(outer*inner)), new(args).ptr(y.ptr).ptr(xd.ptr).i64(int64(outer)).i64(int64(n)).i64(int64(inner)), what)
	}
	return y
}
