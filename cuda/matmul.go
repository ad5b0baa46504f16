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

// Linear writes bias + residual into the output with add_bias (kernels/conv.cu,
// one pass reading the residual), then adds the product onto it; without
// either it is the plain product.
func (g *Backend) Linear(x, w, bias, residual tensor.Buffer, p tensor.LinearParams) tensor.Buffer {
	xd, wd, bd, rd := dev("linear", x), dev("linear", w), devOrNil("linear", bias), devOrNil("linear", residual)
	d := same("linear", xd, wd, bd, rd)
	need("linear", xd, p.Rows*p.In)
	need("linear", wd, p.Out*p.In)
	need("linear", bd, p.Out)
	need("linear", rd, p.Rows*p.Out)
	out := g.newBuffer(d, p.Rows*p.Out)
	mp := tensor.MatMulParams{Batch: 1, M: p.Rows, N: p.Out, K: p.In, TransB: true}
	if bd == nil && rd == nil {
		g.gemm(d, "linear", out.ptr, xd.ptr, wd.ptr, mp)
		return out
	}
	g.addBias(d, out, bd, rd, p.Rows, 1, p.Out, fmt.Sprintf("linear bias and residual of [%d, %d]", p.Rows, p.Out))
	g.gemmAdd(d, "linear", out.ptr, xd.ptr, wd.ptr, mp)
	return out
}

// MatMul returns the Batch products of p as one [Batch, M, N] buffer.
func (g *Backend) MatMul(a, b tensor.Buffer, p tensor.MatMulParams) tensor.Buffer {
	ad, bd := dev("matmul", a), dev("matmul", b)
	d := same("matmul", ad, bd)
	out := g.newBuffer(d, p.Batch*p.M*p.N)
	g.gemm(d, "matmul", out.ptr, ad.ptr, bd.ptr, p)
	return out
}

// cudaDataType codes of cuBLAS.
var cublasType = map[tensor.DType]C.int{tensor.Float32: 0, tensor.Float16: 2, tensor.BFloat16: 14}

// gemm writes the products of p into out, through cuBLAS when it was found,
// else the kernels in kernels/matmul.cu; op names the caller in profiles. Batch
// strides are in elements.
func (g *Backend) gemm(d tensor.DType, op string, out, a, b C.CUdeviceptr, p tensor.MatMulParams) {
	g.scaledGemm(d, op, out, a, b, p, 1)
}

// scaledGemm is gemm writing alpha times the products where it can: cuBLAS
// scales in its epilogue, the kernels in kernels/matmul.cu do not. It reports whether
// out holds the scaled products (or nothing was to be done); when false, out
// holds the plain products and the caller scales them.
func (g *Backend) scaledGemm(d tensor.DType, op string, out, a, b C.CUdeviceptr, p tensor.MatMulParams, alpha float32) (scaled bool) {
	return g.gemmInto(d, op, out, a, b, p, alpha, false)
}

// gemmAdd adds the products of p onto what out holds (cuBLAS's beta = 1, the
// kernels' accumulate): Linear's and Conv2d's bias and residual, written
// into out before, cost no pass of their own after the product.
func (g *Backend) gemmAdd(d tensor.DType, op string, out, a, b C.CUdeviceptr, p tensor.MatMulParams) {
	g.gemmInto(d, op, out, a, b, p, 1, true)
}

func (g *Backend) gemmInto(d tensor.DType, op string, out, a, b C.CUdeviceptr, p tensor.MatMulParams, alpha float32, accumulate bool) (scaled bool) {
	if g.failed() || p.Batch == 0 || p.M == 0 || p.N == 0 {
		return true
	}
	what := fmt.Sprintf("%d×[%d×%d]·[%d×%d] %s (transA %v, transB %v)", p.Batch, p.M, p.K, p.K, p.N, d, p.TransA, p.TransB)
	if p.K == 0 {
		g.fail(fmt.Errorf("cuda: matmul %s: empty inner dimension: %w", what, tensor.ErrUnsupported))
		return true
	}
	if g.cublas != "" {
		g.cublasGemm(d, op, out, a, b, p, what, alpha, accumulate)
		return true
	}
	g.kernelGemm(d, op, out, a, b, p, what, accumulate)
	return alpha == 1
}

// cublasGemm runs the products, times alpha, through cublasGemmStridedBatchedEx,
// added onto out's contents (beta = 1) when accumulate is set.
func (g *Backend) cublasGemm(d tensor.DType, op string, out, a, b C.CUdeviceptr, p tensor.MatMulParams, what string, alpha float32, accumulate bool) {
	var beta float32
	if accumulate {
		beta = 1
	}
	prof := g.prof.Load()
	start := prof.begin()
	st := C.rf_gemm(cublasType[d], cbool(p.TransA), cbool(p.TransB), C.int(p.M), C.int(p.N), C.int(p.K), a, b, out,
		C.longlong(p.BatchStrideA), C.longlong(p.BatchStrideB), C.longlong(p.M*p.N), C.int(p.Batch), cbool(g.opts.TF32), C.float(alpha), C.float(beta))
	if prof != nil {
		prof.end(start, "cublas gemm "+d.String(), op, float64(p.FLOPs()))
	}
	if st != 0 {
		g.fail(fmt.Errorf("cuda: matmul %s: cuBLAS status %d", what, int(st)))
	}
}

// kernelGemm runs the products through the kernels in kernels/matmul.cu.
func (g *Backend) kernelGemm(d tensor.DType, op string, out, a, b C.CUdeviceptr, p tensor.MatMulParams, what string, accumulate bool) {
	name, threads, shared := "gemm_f32", 256, 0
	if d != tensor.Float32 {
		// gemm_wmma_impl's shared memory: two 64×16 slices, a 64×64 float tile, 32 bytes of alignment slack.
		name, threads, shared = "gemm_wmma"+suffix(d), 128, 2*64*16*d.Size()+64*64*4+32
	}
	// struct Gemm { int M, N, K, transA, transB, accumulate; int64_t strideA, strideB; } (kernels/matmul.cu)
	rec := make([]byte, 0, 40)
	for _, v := range []int{p.M, p.N, p.K, b2i(p.TransA), b2i(p.TransB), b2i(accumulate)} {
		rec = binary.LittleEndian.AppendUint32(rec, uint32(v))
	}
	rec = binary.LittleEndian.AppendUint64(rec, uint64(p.BatchStrideA))
	rec = binary.LittleEndian.AppendUint64(rec, uint64(p.BatchStrideB))
	size := C.CUdeviceptr(d.Size())
	// The grid's z extent is at most 65535: larger batches go in chunks.
	for b0 := 0; b0 < p.Batch; b0 += 65535 {
		nb := min(p.Batch-b0, 65535)
		l := launch{grid: [3]int{(p.N + 63) / 64, (p.M + 63) / 64, nb}, block: threads, shared: shared,
			op: op, flops: float64(tensor.MatMulParams{Batch: nb, M: p.M, N: p.N, K: p.K}.FLOPs())}
		off := func(stride int) C.CUdeviceptr { return C.CUdeviceptr(b0*stride) * size }
		g.run(name, l, new(args).ptr(out+off(p.M*p.N)).ptr(a+off(p.BatchStrideA)).ptr(b+off(p.BatchStrideB)).record(rec), "matmul "+what)
	}
}

func cbool(v bool) C.int { return C.int(b2i(v)) }

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}
