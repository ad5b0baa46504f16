//go:build cuda

package cuda

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// sliceThreads is the block size of the split group-norm kernels.
const sliceThreads = 256

// GroupNorm normalizes each (sample, group) of x (+ shift) [N, C, HW], with
// p.SiLU applying SiLU in the same write; the statistics come back as
// float32 [N, Groups] whatever x's dtype.
func (g *Backend) GroupNorm(x, shift, gamma, beta tensor.Buffer, p tensor.GroupNormParams) (y, mean, rstd tensor.Buffer) {
	return g.groupNorm(x, shift, gamma, beta, p, groupSlices(p.N*p.Groups, p.C/max(p.Groups, 1)*p.HW))
}

// groupNorm is GroupNorm with each run cut into the given number of slices.
func (g *Backend) groupNorm(x, shift, gamma, beta tensor.Buffer, p tensor.GroupNormParams, slices int) (y, mean, rstd tensor.Buffer) {
	op := groupNormName(p, shift != nil)
	xd, sd, gd, bd := dev(op, x), devOrNil(op, shift), devOrNil(op, gamma), devOrNil(op, beta)
	d := same(op, xd, sd, gd, bd)
	need(op, xd, p.N*p.C*p.HW)
	need(op, sd, p.N*p.C)
	need(op, gd, p.C)
	need(op, bd, p.C)
	if p.Groups <= 0 || p.C%p.Groups != 0 {
		panic(fmt.Sprintf("cuda: %s: %d channels in %d groups", op, p.C, p.Groups))
	}
	out := g.newBuffer(d, xd.n)
	runs, size := p.N*p.Groups, p.C/p.Groups*p.HW
	mu, rs := g.newBuffer(tensor.Float32, runs), g.newBuffer(tensor.Float32, runs)
	what := fmt.Sprintf("%s of [%d, %d, %d] in %d groups", op, p.N, p.C, p.HW, p.Groups)
	shape := func(a *args) *args {
		return a.ptr(xd.ptr).ptr(ptrOf(sd)).ptr(ptrOf(gd)).ptr(ptrOf(bd)).i32(int32(p.C)).div(p.HW).i32(int32(p.Groups)).
			f32(float32(p.Eps)).i32(int32(b2i(p.SiLU)))
	}
	if slices > 1 {
		part := g.newBuffer(tensor.Float32, 2*runs*slices) // float2 per slice
		l := launch{grid: [3]int{slices, runs, 1}, block: sliceThreads}
		g.run("groupnorm_partial"+suffix(d), l, new(args).ptr(part.ptr).ptr(xd.ptr).ptr(ptrOf(sd)).i32(int32(p.C/p.Groups)).div(p.HW), what)
		g.run("groupnorm_apply"+suffix(d), l, shape(new(args).ptr(out.ptr).ptr(mu.ptr).ptr(rs.ptr).ptr(part.ptr)), what)
		g.Free(part)
		return out, mu, rs
	}
	l := launch{grid: [3]int{runs, 1, 1}, block: rowThreads(size)}
	g.run("groupnorm"+suffix(d), l, shape(new(args).ptr(out.ptr).ptr(mu.ptr).ptr(rs.ptr)), what)
	return out, mu, rs
}

// GroupNormBackward returns dL/dx (= dL/d(x + shift)) from the forward's
// statistics; with p.SiLU through the SiLU too (beta is read only then).
func (g *Backend) GroupNormBackward(x, shift, dy, mean, rstd, gamma, beta tensor.Buffer, p tensor.GroupNormParams) tensor.Buffer {
	op := groupNormName(p, shift != nil) + " backward"
	if !p.SiLU {
		beta = nil
	}
	xd, sd, dd, gd, bd := dev(op, x), devOrNil(op, shift), dev(op, dy), devOrNil(op, gamma), devOrNil(op, beta)
	md, rd := stats(op, mean, p.N*p.Groups), stats(op, rstd, p.N*p.Groups)
	d := same(op, xd, sd, dd, gd, bd)
	need(op, xd, p.N*p.C*p.HW)
	need(op, sd, p.N*p.C)
	need(op, dd, xd.n)
	need(op, gd, p.C)
	need(op, bd, p.C)
	dx := g.newBuffer(d, xd.n)
	runs, size := p.N*p.Groups, p.C/p.Groups*p.HW
	what := fmt.Sprintf("%s of [%d, %d, %d] in %d groups", op, p.N, p.C, p.HW, p.Groups)
	shape := func(a *args) *args {
		return a.ptr(xd.ptr).ptr(ptrOf(sd)).ptr(dd.ptr).ptr(md.ptr).ptr(rd.ptr).ptr(ptrOf(gd)).ptr(ptrOf(bd)).i32(int32(p.C)).
			div(p.HW).i32(int32(p.Groups)).i32(int32(b2i(p.SiLU)))
	}
	if s := groupSlices(runs, size); s > 1 {
		part := g.newBuffer(tensor.Float32, 2*runs*s) // float2 per slice
		l := launch{grid: [3]int{s, runs, 1}, block: sliceThreads}
		g.run("groupnorm_bwd_partial"+suffix(d), l, shape(new(args).ptr(part.ptr)), what)
		g.run("groupnorm_bwd_apply"+suffix(d), l, shape(new(args).ptr(dx.ptr).ptr(part.ptr)), what)
		g.Free(part)
		return dx
	}
	l := launch{grid: [3]int{runs, 1, 1}, block: rowThreads(size)}
	g.run("groupnorm_bwd"+suffix(d), l, shape(new(args).ptr(dx.ptr)), what)
	return dx
}

// LayerNorm normalizes each row of x [rows, cols]; float32 statistics [rows].
func (g *Backend) LayerNorm(x, gamma, beta tensor.Buffer, rows, cols int, eps float64) (y, mean, rstd tensor.Buffer) {
	xd, gd, bd := dev("layer_norm", x), devOrNil("layer_norm", gamma), devOrNil("layer_norm", beta)
	d := same("layer_norm", xd, gd, bd)
	need("layer_norm", xd, rows*cols)
	need("layer_norm", gd, cols)
	need("layer_norm", bd, cols)
	out := g.newBuffer(d, xd.n)
	mu, rs := g.newBuffer(tensor.Float32, rows), g.newBuffer(tensor.Float32, rows)
	l := launch{grid: [3]int{rows, 1, 1}, block: rowThreads(cols)}
	g.run("layernorm"+suffix(d), l, new(args).ptr(out.ptr).ptr(mu.ptr).ptr(rs.ptr).ptr(xd.ptr).ptr(ptrOf(gd)).ptr(ptrOf(bd)).
		i64(int64(cols)).f32(float32(eps)), fmt.Sprintf("layer_norm of [%d, %d]", rows, cols))
	return out, mu, rs
}

// LayerNormBackward returns dL/dx from the forward's statistics.
func (g *Backend) LayerNormBackward(x, dy, mean, rstd, gamma tensor.Buffer, rows, cols int) tensor.Buffer {
	const op = "layer_norm backward"
	xd, dd, gd := dev(op, x), dev(op, dy), devOrNil(op, gamma)
	md, rd := stats(op, mean, rows), stats(op, rstd, rows)
	d := same(op, xd, dd, gd)
	need(op, xd, rows*cols)
	need(op, dd, rows*cols)
	dx := g.newBuffer(d, xd.n)
	l := launch{grid: [3]int{rows, 1, 1}, block: rowThreads(cols)}
	g.run("layernorm_bwd"+suffix(d), l, new(args).ptr(dx.ptr).ptr(xd.ptr).ptr(dd.ptr).ptr(md.ptr).ptr(rd.ptr).ptr(ptrOf(gd)).
		i64(int64(cols)), fmt.Sprintf("%s of [%d, %d]", op, rows, cols))
	return dx
}

// groupNormName names the op in messages: the fused forms by their tensor-level names.
func groupNormName(p tensor.GroupNormParams, shift bool) string {
	name := "group_norm"
	if p.SiLU {
		name += "_silu"
	}
	if shift {
		name = "add_" + name
	}
	return name
}

// stats checks a saved statistic: float32, n values (from this backend's forward).
func stats(op string, x tensor.Buffer, n int) *buffer {
	s := dev(op, x)
	if s.dtype != tensor.Float32 {
		panic(fmt.Sprintf("cuda: %s: statistics of dtype %s, want the forward's float32", op, s.dtype))
	}
	need(op, s, n)
	return s
}
