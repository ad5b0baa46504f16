//go:build cuda

package cuda

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// Upsample2x repeats each element of x [planes, h, w] into a 2×2 block.
func (g *Backend) Upsample2x(x tensor.Buffer, planes, h, w int) tensor.Buffer {
	xd := dev("upsample2x", x)
	d := same("upsample2x", xd)
	need("upsample2x", xd, planes*h*w)
	y := g.newBuffer(d, 4*planes*h*w)
	g.run("upsample2x"+suffix(d), linear(int64(4*planes*h*w)), new(args).ptr(y.ptr).ptr(xd.ptr).i64(int64(planes)).div(2*h).div(2*w),
		fmt.Sprintf("upsample2x [%d, %d, %d]", planes, h, w))
	return y
}

// Upsample2xBackward sums each 2×2 block of dy [planes, 2h, 2w].
func (g *Backend) Upsample2xBackward(dy tensor.Buffer, planes, h, w int) tensor.Buffer {
	dd := dev("upsample2x backward", dy)
	d := same("upsample2x backward", dd)
	need("upsample2x backward", dd, 4*planes*h*w)
	dx := g.newBuffer(d, planes*h*w)
	g.run("upsample2x_bwd"+suffix(d), linear(int64(planes*h*w)), new(args).ptr(dx.ptr).ptr(dd.ptr).i64(int64(planes)).div(h).div(w),
		fmt.Sprintf("upsample2x backward [%d, %d, %d]", planes, h, w))
	return dx
}
