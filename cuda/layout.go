//go:build cuda

package cuda

/*
#include "driver.h"
*/
import "C"

import (
	"fmt"
	"slices"

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

// ReduceSum sums x [outer, n, inner] over its middle axis.
func (g *Backend) ReduceSum(x tensor.Buffer, outer, n, inner int) tensor.Buffer {
	xd := dev("sum", x)
	d := same("sum", xd)
	need("sum", xd, outer*n*inner)
	y := g.newBuffer(d, outer*inner)
	what := fmt.Sprintf("sum of [%d, %d, %d] over axis 1", outer, n, inner)
	if inner == 1 {
		g.run("reduce_rows"+suffix(d), launch{grid: [3]int{outer, 1, 1}, block: rowThreads(n)}, new(args).ptr(y.ptr).ptr(xd.ptr).i64(int64(n)), what)
	} else {
		g.run("reduce_cols"+suffix(d), linear(int64(outer*inner)), new(args).ptr(y.ptr).ptr(xd.ptr).i64(int64(outer)).i64(int64(n)).i64(int64(inner)), what)
	}
	return y
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

// Upsample2x repeats each element of x [planes, h, w] into a 2×2 block.
func (g *Backend) Upsample2x(x tensor.Buffer, planes, h, w int) tensor.Buffer {
	xd := dev("upsample", x)
	d := same("upsample", xd)
	need("upsample", xd, planes*h*w)
	y := g.newBuffer(d, 4*planes*h*w)
	g.run("upsample2x"+suffix(d), linear(int64(4*planes*h*w)), new(args).ptr(y.ptr).ptr(xd.ptr).i64(int64(planes)).div(2*h).div(2*w),
		fmt.Sprintf("upsample [%d, %d, %d]", planes, h, w))
	return y
}

// Upsample2xBackward sums each 2×2 block of dy [planes, 2h, 2w].
func (g *Backend) Upsample2xBackward(dy tensor.Buffer, planes, h, w int) tensor.Buffer {
	dd := dev("upsample backward", dy)
	d := same("upsample backward", dd)
	need("upsample backward", dd, 4*planes*h*w)
	dx := g.newBuffer(d, planes*h*w)
	g.run("upsample2x_bwd"+suffix(d), linear(int64(planes*h*w)), new(args).ptr(dx.ptr).ptr(dd.ptr).i64(int64(planes)).div(h).div(w),
		fmt.Sprintf("upsample backward [%d, %d, %d]", planes, h, w))
	return dx
}

// Gather returns rows ids[i] of table [rows, dim]. An id out of range is an
// error naming it (the kernel flags it; checking costs one small copy back,
// and Gather runs once per prompt, for the token embeddings).
func (g *Backend) Gather(table, ids tensor.Buffer, dim int) tensor.Buffer {
	td, id := dev("gather", table), dev("gather", ids)
	d := same("gather", td)
	if id.dtype != tensor.Int32 {
		panic(fmt.Sprintf("cuda: gather: ids of dtype %s, want i32", id.dtype))
	}
	rows := td.n / dim
	y := g.newBuffer(d, id.n*dim)
	bad := g.Alloc(tensor.Int32, 1).(*buffer)
	defer g.Free(bad)
	what := fmt.Sprintf("gather %d ids from [%d, %d]", id.n, rows, dim)
	g.run("gather"+suffix(d), linear(int64(id.n*dim)), new(args).ptr(y.ptr).ptr(td.ptr).ptr(id.ptr).i64(int64(id.n)).i64(int64(dim)).i64(int64(rows)).ptr(bad.ptr), what)
	if g.failed() || g.Int32s(bad)[0] == 0 {
		return y
	}
	host := g.Int32s(id)
	i := slices.IndexFunc(host, func(v int32) bool { return v < 0 || int(v) >= rows })
	g.fail(fmt.Errorf("cuda: %s: id %d at position %d is out of range", what, host[max(i, 0)], i))
	return y
}
