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

// Unary returns op(x) elementwise.
func (g *Backend) Unary(op tensor.UnaryOp, x tensor.Buffer) tensor.Buffer {
	xd := dev(op.String(), x)
	d := same(op.String(), xd)
	y := g.newBuffer(d, xd.n)
	g.run("unary"+suffix(d), linearVec(xd.n, d), new(args).i32(int32(op)).ptr(y.ptr).ptr(xd.ptr).i64(int64(xd.n)),
		fmt.Sprintf("%s of %d elements", op, xd.n))
	return y
}

// UnaryBackward returns dy·op'(x) elementwise.
func (g *Backend) UnaryBackward(op tensor.UnaryOp, x, dy tensor.Buffer) tensor.Buffer {
	what := op.String() + " backward"
	xd, gd := dev(what, x), dev(what, dy)
	d := same(what, xd, gd)
	need(what, gd, xd.n)
	dx := g.newBuffer(d, xd.n)
	g.run("unary_bwd"+suffix(d), linearVec(xd.n, d), new(args).i32(int32(op)).ptr(dx.ptr).ptr(xd.ptr).ptr(gd.ptr).i64(int64(xd.n)),
		fmt.Sprintf("%s of %d elements", what, xd.n))
	return dx
}

// Affine returns a·x + b elementwise.
func (g *Backend) Affine(x tensor.Buffer, a, b float64) tensor.Buffer {
	xd := dev("affine", x)
	d := same("affine", xd)
	y := g.newBuffer(d, xd.n)
	g.run("affine"+suffix(d), linearVec(xd.n, d), new(args).ptr(y.ptr).ptr(xd.ptr).f32(float32(a)).f32(float32(b)).i64(int64(xd.n)),
		fmt.Sprintf("affine of %d elements", xd.n))
	return y
}

// Binary returns op(a, b) over bc.Shape.
func (g *Backend) Binary(op tensor.BinaryOp, a, b tensor.Buffer, bc tensor.Broadcast) tensor.Buffer {
	ad, bd := dev(op.String(), a), dev(op.String(), b)
	d := same(op.String(), ad, bd)
	n := bc.Shape.Numel()
	out := g.newBuffer(d, n)
	shape, sa, sb := simplifyBroadcast(bc)
	if len(shape) > maxRank {
		g.fail(fmt.Errorf("cuda: %s over shape %v: more than %d axes after merging: %w", op, bc.Shape, maxRank, tensor.ErrUnsupported))
		return out
	}
	// struct Broadcast { int rank; Divisor shape[6]; int64_t sa[6], sb[6]; } (kernels/elementwise.cu)
	rec := indexRecord(shape, sa, sb)
	kernel, l := "binary", linear(int64(n))
	if vecLastAxis(shape, [][]int{sa, sb}, []C.CUdeviceptr{out.ptr, ad.ptr, bd.ptr}, d) {
		kernel, l = "binary_vec", linearVec(n, d)
	}
	g.run(kernel+suffix(d), l, new(args).i32(int32(op)).ptr(out.ptr).ptr(ad.ptr).ptr(bd.ptr).i64(int64(n)).record(rec),
		fmt.Sprintf("%s over %v", op, bc.Shape))
	return out
}

// GEGLU returns h·GELU(g) for each row [h | g] of x [rows, 2·cols] plus bias
// (nil: none), the bias read in the same pass.
func (g *Backend) GEGLU(x, bias tensor.Buffer, rows, cols int) tensor.Buffer {
	xd, bd := dev("geglu", x), devOrNil("geglu", bias)
	d := same("geglu", xd, bd)
	need("geglu", xd, 2*rows*cols)
	need("geglu", bd, 2*cols)
	y := g.newBuffer(d, rows*cols)
	// A Vec of a row per thread when the width is whole Vecs (kernels/elementwise.cu).
	unit, l := 1, linear(int64(rows*cols))
	if v := vecLen(d); cols%v == 0 && vecAligned(y.ptr) && vecAligned(xd.ptr) && (bd == nil || vecAligned(bd.ptr)) {
		unit, l = v, linearVec(rows*cols, d)
	}
	g.run("geglu"+suffix(d), l, new(args).ptr(y.ptr).ptr(xd.ptr).ptr(ptrOf(bd)).i64(int64(rows)).div(cols).i32(int32(unit)),
		fmt.Sprintf("geglu of [%d, 2·%d]", rows, cols))
	return y
}

// GEGLUBackward returns dL/dx [rows, 2·cols] for dy [rows, cols], x + bias
// formed again rather than kept.
func (g *Backend) GEGLUBackward(x, bias, dy tensor.Buffer, rows, cols int) tensor.Buffer {
	xd, bd, gd := dev("geglu backward", x), devOrNil("geglu backward", bias), dev("geglu backward", dy)
	d := same("geglu backward", xd, bd, gd)
	need("geglu backward", xd, 2*rows*cols)
	need("geglu backward", bd, 2*cols)
	need("geglu backward", gd, rows*cols)
	dx := g.newBuffer(d, 2*rows*cols)
	g.run("geglu_bwd"+suffix(d), linear(int64(rows*cols)), new(args).ptr(dx.ptr).ptr(xd.ptr).ptr(ptrOf(bd)).ptr(gd.ptr).i64(int64(rows)).div(cols),
		fmt.Sprintf("geglu backward of [%d, 2·%d]", rows, cols))
	return dx
}
