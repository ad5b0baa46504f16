//go:build cuda

package cuda

/*
#include "driver.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// colBudget bounds the im2col scratch buffer: samples are unfolded this many
// bytes at a time and multiplied in one batched GEMM (the VAE's 512² layers
// unfold to over 1 GiB per sample in float32, and run one sample at a time).
const colBudget = 512 << 20

// Conv2d is im2col + GEMM: out[n] = w [O, C·KH·KW] · col[n] [C·KH·KW, OH·OW];
// a 1×1 convolution with stride 1 and no padding multiplies x directly. The
// bias is added after the product; with a residual, bias + residual are
// written first and the product added onto them (one pass fewer).
func (g *Backend) Conv2d(x, w, bias, residual tensor.Buffer, p tensor.Conv2dParams) tensor.Buffer {
	xd, wd, bd, rd := dev("conv2d", x), dev("conv2d", w), devOrNil("conv2d", bias), devOrNil("conv2d", residual)
	d := same("conv2d", xd, wd, bd, rd)
	need("conv2d", xd, p.N*p.C*p.H*p.W)
	need("conv2d", wd, p.O*p.C*p.KH*p.KW)
	need("conv2d", bd, p.O)
	P, ckk := p.OutH()*p.OutW(), p.C*p.KH*p.KW
	need("conv2d", rd, p.N*p.O*P)
	out := g.newBuffer(d, p.N*p.O*P)
	size := C.CUdeviceptr(d.Size())
	gemm := g.gemm
	if rd != nil {
		g.addBias(d, out, bd, rd, p.N, P, p.O, convWhat("conv2d bias and residual", p))
		bd, gemm = nil, g.gemmAdd
	}
	if pointwise(p) {
		gemm(d, "conv2d", out.ptr, wd.ptr, xd.ptr, tensor.MatMulParams{Batch: p.N, M: p.O, N: P, K: p.C, BatchStrideB: p.C * P})
	} else {
		chunk := chunkSamples(p.N, ckk*P*d.Size())
		col := g.newBuffer(d, chunk*ckk*P)
		for n0 := 0; n0 < p.N; n0 += chunk {
			nb := min(chunk, p.N-n0)
			for i := range nb {
				g.im2col(d, col.ptr+C.CUdeviceptr(i*ckk*P)*size, xd.ptr+C.CUdeviceptr((n0+i)*p.C*p.H*p.W)*size, p)
			}
			gemm(d, "conv2d", out.ptr+C.CUdeviceptr(n0*p.O*P)*size, wd.ptr, col.ptr,
				tensor.MatMulParams{Batch: nb, M: p.O, N: P, K: ckk, BatchStrideB: ckk * P})
		}
		g.Free(col)
	}
	if bd != nil {
		g.addBias(d, out, bd, nil, p.N, P, p.O, convWhat("conv2d bias", p))
	}
	return out
}

// addBias launches kernels/conv.cu's add_bias over out [n, channels, plane]:
// out = src + bias[channel], src being the residual when there is one (then
// out is written, not read), else out itself; bias may be nil with a
// residual. A Vec of a plane per thread when the planes are whole Vecs.
func (g *Backend) addBias(d tensor.DType, out, bias, residual *buffer, n, plane, channels int, what string) {
	total := n * channels * plane
	src, bp := out.ptr, ptrOf(bias)
	if residual != nil {
		src = residual.ptr
	}
	unit, l := 1, linear(int64(total))
	if v := vecLen(d); plane%v == 0 && vecAligned(out.ptr) && vecAligned(src) {
		unit, l = v, linearVec(total, d)
	}
	g.run("add_bias"+suffix(d), l, new(args).ptr(out.ptr).ptr(src).ptr(bp).i64(int64(n)).div(plane).div(channels).i32(int32(unit)), what)
}

// Conv2dBackwardInput is the adjoint. A 3×3 kernel, stride 1, in f16 or bf16 runs as
// one implicit GEMM (kernels/conv_implicit.cu: no column buffer) unless
// RFNET_CONV=im2col; a pointwise one is a GEMM; any other shape, or f32, is
// dcol[n] = wᵀ · dy[n] then col2im.
func (g *Backend) Conv2dBackwardInput(dy, w tensor.Buffer, p tensor.Conv2dParams) tensor.Buffer {
	gd, wd := dev("conv2d backward", dy), dev("conv2d backward", w)
	d := same("conv2d backward", gd, wd)
	P, ckk := p.OutH()*p.OutW(), p.C*p.KH*p.KW
	need("conv2d backward", gd, p.N*p.O*P)
	need("conv2d backward", wd, p.O*ckk)
	dx := g.newBuffer(d, p.N*p.C*p.H*p.W)
	size := C.CUdeviceptr(d.Size())
	if g.implicitGradient(p, d) {
		g.conv2dBackwardImplicit(d, dx.ptr, gd.ptr, wd.ptr, p)
		return dx
	}
	if pointwise(p) {
		g.gemm(d, "conv2d backward", dx.ptr, wd.ptr, gd.ptr, tensor.MatMulParams{Batch: p.N, M: p.C, N: P, K: p.O, TransA: true, BatchStrideB: p.O * P})
		return dx
	}
	chunk := chunkSamples(p.N, ckk*P*d.Size())
	col := g.newBuffer(d, chunk*ckk*P)
	for n0 := 0; n0 < p.N; n0 += chunk {
		nb := min(chunk, p.N-n0)
		g.gemm(d, "conv2d backward", col.ptr, wd.ptr, gd.ptr+C.CUdeviceptr(n0*p.O*P)*size,
			tensor.MatMulParams{Batch: nb, M: ckk, N: P, K: p.O, TransA: true, BatchStrideB: p.O * P})
		for i := range nb {
			g.col2im(d, dx.ptr+C.CUdeviceptr((n0+i)*p.C*p.H*p.W)*size, col.ptr+C.CUdeviceptr(i*ckk*P)*size, p)
		}
	}
	g.Free(col)
	return dx
}

// SetConv2dPath picks the input gradient's path (tests and benchmarks run
// both in one process; the backend is opened once) and returns the previous one.
func (g *Backend) SetConv2dPath(c Conv2dPath) (was Conv2dPath) {
	return Conv2dPath(g.convPath.Swap(int32(c)))
}

// implicitGradient says whether kernels/conv_implicit.cu takes the input
// gradient of p in d: a 16-bit dtype (its tensor-core operands), a 3×3
// kernel with stride 1 (the UNet's and the VAE's every convolution but the
// pointwise ones and the downsampling ones, whose stride 2 would make three
// of four products zeros), any padding, and the im2col path not asked for.
func (g *Backend) implicitGradient(p tensor.Conv2dParams, d tensor.DType) bool {
	return Conv2dPath(g.convPath.Load()) == ConvImplicit && d != tensor.Float32 && p.KH == 3 && p.KW == 3 && p.Stride == 1 && p.N <= 65535
}

// conv2dBackwardImplicit launches kernels/conv_implicit.cu: a block of 8
// warps per 64 channels × 128 positions of one sample's dx; shared memory
// holds two stages of a 64×32 slice of wᵀ and a 32×128 slice of the
// gathered dy, each row padded by 8 elements. With K split (dgradSplits)
// the blocks write f32 partial tiles to a scratch buffer and
// conv2d_backward_input_sum adds them up into dx.
func (g *Backend) conv2dBackwardImplicit(d tensor.DType, dx, dy, w C.CUdeviceptr, p tensor.Conv2dParams) {
	const rows, cols, depth, pad = 64, 128, 32, 8
	tiles := [2]int{(p.H*p.W + cols - 1) / cols, (p.C + rows - 1) / rows}
	splits, chunk := dgradSplits(p.N*tiles[0]*tiles[1], (p.O*9+depth-1)/depth)
	var partial *buffer
	total := p.N * p.C * p.H * p.W
	if splits > 1 {
		partial = g.newBuffer(tensor.Float32, splits*total)
	}
	what := convWhat("conv2d backward input", p)
	l := launch{grid: [3]int{tiles[0], tiles[1], p.N * splits}, block: 256,
		shared: 2 * (rows*(depth+pad) + depth*(cols+pad)) * d.Size(), flops: float64(p.FLOPs())}
	g.run("conv2d_backward_input"+suffix(d), l, new(args).ptr(dx).ptr(ptrOf(partial)).ptr(dy).ptr(w).record(convRecord(p)).
		i32(int32(p.O)).i32(int32(splits)).i32(int32(chunk)), what)
	if partial != nil {
		g.run("conv2d_backward_input_sum"+suffix(d), linear(int64(total)), new(args).ptr(dx).ptr(partial.ptr).i32(int32(splits)).i64(int64(total)), what)
		g.Free(partial)
	}
}

func pointwise(p tensor.Conv2dParams) bool {
	return p.KH == 1 && p.KW == 1 && p.Stride == 1 && p.Pad == 0
}

// chunkSamples is how many samples' columns fit colBudget (at least one).
func chunkSamples(n, bytesPerSample int) int { return max(1, min(n, colBudget/max(bytesPerSample, 1))) }

// convRecord is struct Conv { int C, H, W, KH, KW, stride, pad, OH, OW; } (kernels/conv.cu).
func convRecord(p tensor.Conv2dParams) []byte {
	var rec []byte
	for _, v := range []int{p.C, p.H, p.W, p.KH, p.KW, p.Stride, p.Pad, p.OutH(), p.OutW()} {
		rec = binary.LittleEndian.AppendUint32(rec, uint32(v))
	}
	return rec
}

// im2col launches one thread per input channel and output position, or per
// Vec of positions when an output row is a whole number of them (the
// kernel's two paths: kernels/conv.cu).
func (g *Backend) im2col(d tensor.DType, col, x C.CUdeviceptr, p tensor.Conv2dParams) {
	P, ow, unit := p.OutH()*p.OutW(), p.OutW(), 1
	if v := vecLen(d); ow%v == 0 && vecAligned(col) {
		P, ow, unit = P/v, ow/v, v
	}
	g.run("im2col"+suffix(d), linear(int64(p.C*P)), new(args).ptr(col).ptr(x).record(convRecord(p)).div(ow).div(P).i32(int32(unit)),
		convWhat("im2col", p))
}

func (g *Backend) col2im(d tensor.DType, dx, col C.CUdeviceptr, p tensor.Conv2dParams) {
	n := int64(p.C * p.H * p.W)
	g.run("col2im"+suffix(d), linear(n), new(args).ptr(dx).ptr(col).record(convRecord(p)).div(p.W).div(p.H*p.W).div(p.Stride), convWhat("col2im", p))
}

func convWhat(op string, p tensor.Conv2dParams) string {
	return fmt.Sprintf("%s of [%d, %d, %d, %d] with [%d, %d, %d, %d], stride %d, padding %d", op, p.N, p.C, p.H, p.W, p.O, p.C, p.KH, p.KW, p.Stride, p.Pad)
}
