//go:build cuda

package cuda

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// Softmax normalizes each row of x [rows, cols].
func (g *Backend) Softmax(x tensor.Buffer, rows, cols int) tensor.Buffer {
	xd := dev("softmax", x)
	d := same("softmax", xd)
	need("softmax", xd, rows*cols)
	y := g.newBuffer(d, xd.n)
	g.run("softmax"+suffix(d), launch{grid: [3]int{rows, 1, 1}, block: rowThreads(cols)},
		new(args).ptr(y.ptr).ptr(xd.ptr).i64(int64(cols)), fmt.Sprintf("softmax of [%d, %d]", rows, cols))
	return y
}

// SoftmaxBackward returns y·(dy - Σ dy·y) per row.
func (g *Backend) SoftmaxBackward(y, dy tensor.Buffer, rows, cols int) tensor.Buffer {
	yd, dd := dev("softmax backward", y), dev("softmax backward", dy)
	d := same("softmax backward", yd, dd)
	need("softmax backward", yd, rows*cols)
	need("softmax backward", dd, rows*cols)
	dx := g.newBuffer(d, yd.n)
	g.run("softmax_bwd"+suffix(d), launch{grid: [3]int{rows, 1, 1}, block: rowThreads(cols)},
		new(args).ptr(dx.ptr).ptr(yd.ptr).ptr(dd.ptr).i64(int64(cols)), fmt.Sprintf("softmax backward of [%d, %d]", rows, cols))
	return dx
}
