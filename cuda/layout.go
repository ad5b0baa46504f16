//go:build cuda

package cuda

/*
#include "driver.h"
*/
import "C"

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// Permute reorders the axes of x of shape `shape`: output axis i is input axis perm[i].
func (g *Backend) Permute(x tensor.Buffer, shape tensor.Shape, perm []int) tensor.Buffer {
	xd := dev("permute", x)
	d := xd.dtype
	need("permute", xd, shape.Numel())
	y := g.newBuffer(d, xd.n)
	oshape, istride := permutePlan(shape, perm)
	what := fmt.Sprintf("permute %v by %v", shape, perm)
	if len(oshape) > maxRank {
		g.fail(fmt.Errorf("cuda: %s: more than %d axes after merging: %w", what, maxRank, tensor.ErrUnsupported))
		return y
	}
	// struct Perm { int rank; Divisor oshape[6]; int64_t istride[6]; } (kernels/layout.cu)
	rec := indexRecord(oshape, istride)
	// A Vec per thread when the innermost output axis is also the input's
	// (the attention heads' split and merge: rows of the head width).
	unit, l := 1, linear(int64(xd.n))
	if vecLastAxis(oshape, [][]int{istride}, []C.CUdeviceptr{y.ptr, xd.ptr}, d) && istride[len(istride)-1] == 1 {
		unit, l = vecLen(d), linearVec(xd.n, d)
	}
	g.run("permute"+elemSuffix("permute", d), l, new(args).ptr(y.ptr).ptr(xd.ptr).i64(int64(xd.n)).record(rec).i32(int32(unit)), what)
	return y
}

// elemSuffix picks the kernel instance for a pure data movement: any dtype
// of the same width moves the same bits (int32 as float32).
func elemSuffix(op string, d tensor.DType) string {
	switch d {
	case tensor.Int32:
		return "_f32"
	case tensor.Float64:
		panic(fmt.Sprintf("cuda: %s: float64 buffers are storage only on the GPU", op))
	}
	return suffix(d)
}

// copy2d copies rows × cols elements between strided row layouts, a Vec per
// thread when every row of both sides starts on one and holds whole Vecs
// (the UNet's channel concats do): the kernel then counts in Vecs.
func (g *Backend) copy2d(d tensor.DType, dst, src *buffer, rows, cols, dstStride, dstOff, srcStride, srcOff int, what string) {
	unit := 1
	if v := vecLen(d); vecAligned(dst.ptr) && vecAligned(src.ptr) && (cols|dstStride|dstOff|srcStride|srcOff)%v == 0 {
		unit = v
	}
	g.run("copy2d"+elemSuffix(what, d), linear(int64(rows*cols/unit)), new(args).ptr(dst.ptr).ptr(src.ptr).i64(int64(rows)).div(cols/unit).
		i64(int64(dstStride)).i64(int64(dstOff)).i64(int64(srcStride)).i64(int64(srcOff)).i32(int32(unit)), what)
}

// Concat joins buffers laid out as [outer, inners[i]] into [outer, Σ inners].
func (g *Backend) Concat(xs []tensor.Buffer, outer int, inners []int) tensor.Buffer {
	parts := make([]*buffer, len(xs))
	total := 0
	for i, x := range xs {
		parts[i] = dev("concat", x)
		need("concat", parts[i], outer*inners[i])
		total += inners[i]
	}
	d := parts[0].dtype
	for _, p := range parts {
		if p.dtype != d {
			panic(fmt.Sprintf("cuda: concat: operands of dtypes %s and %s", d, p.dtype))
		}
	}
	y := g.newBuffer(d, outer*total)
	off := 0
	for i, p := range parts {
		g.copy2d(d, y, p, outer, inners[i], total, off, inners[i], 0, fmt.Sprintf("concat of %v ×%d", inners, outer))
		off += inners[i]
	}
	return y
}

// Slice copies columns [start, start+size) of x [outer, inner].
func (g *Backend) Slice(x tensor.Buffer, outer, inner, start, size int) tensor.Buffer {
	xd := dev("slice", x)
	need("slice", xd, outer*inner)
	y := g.newBuffer(xd.dtype, outer*size)
	g.copy2d(xd.dtype, y, xd, outer, size, size, 0, inner, start, fmt.Sprintf("slice [%d:%d] of [%d, %d]", start, start+size, outer, inner))
	return y
}

// SliceBackward places dy [outer, size] at columns [start, start+size) of zeros [outer, inner].
func (g *Backend) SliceBackward(dy tensor.Buffer, outer, inner, start, size int) tensor.Buffer {
	dd := dev("slice backward", dy)
	need("slice backward", dd, outer*size)
	dx := g.Alloc(dd.dtype, outer*inner).(*buffer)
	g.copy2d(dd.dtype, dx, dd, outer, size, inner, start, size, 0, fmt.Sprintf("slice backward [%d:%d] of [%d, %d]", start, start+size, outer, inner))
	return dx
}

// Expand repeats x [outer, inner] n times into [outer, n, inner].
func (g *Backend) Expand(x tensor.Buffer, outer, n, inner int) tensor.Buffer {
	xd := dev("expand", x)
	need("expand", xd, outer*inner)
	y := g.newBuffer(xd.dtype, outer*n*inner)
	g.run("expand"+elemSuffix("expand", xd.dtype), linear(int64(outer*n*inner)), new(args).ptr(y.ptr).ptr(xd.ptr).i64(int64(outer)).div(n*inner).div(inner),
		fmt.Sprintf("expand [%d, %d] ×%d", outer, inner, n))
	return y
}
