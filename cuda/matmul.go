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
	if g.failed() || p.Batch == 0 || p.M == 0 || p.N == 0 {
		return true
	}
	what := fmt.Sprintf("%d×[%d×%d]·[%d×%d] %s (transA %v, transB %v)", p.Batch, p.M, p.K, p.K, p.N, d, p.TransA, p.TransB)
	if p.K == 0 {
		g.fail(fmt.Errorf("cuda: matmul %s: empty inner dimension: %w", what, tensor.ErrUnsupported))
		return true
	}
	if g.cublas != "" {
		g.cublasGemm(d, op, out, a, b, p, what, alpha)
		return true
	}
	g.kernelGemm(d, op, out, a, b, p, what)
	return alpha == 1
}

// cublasGemm runs the products, times alpha, through cublasGemmStridedBatchedEx.
func (g *Backend) cublasGemm(d tensor.DType, op string, out, a, b C.CUdeviceptr, p tensor.MatMulParams, what string, alpha float32) {
	prof := g.prof.Load()
	start := prof.begin()
	st := C.rf_gemm(cublasType[d], cbool(p.TransA), cbool(p.TransB), C.int(p.M), C.int(p.N), C.int(p.K), a, b, out,
		C.longlong(p.BatchStrideA), C.longlong(p.BatchStrideB), C.longlong(p.M*p.N), C.int(p.Batch), cbool(g.opts.TF32), C.float(alpha))
	if prof != nil {
		prof.end(start, "cublas gemm "+d.String(), op, float64(p.FLOPs()))
	}
	if st != 0 {
		g.fail(fmt.Errorf("cuda: matmul %s: cuBLAS status %d", what, int(st)))
	}
}

// kernelGemm runs the products through the kernels in kernels/matmul.cu.
func (g *Backend) kernelGemm(d tensor.DType, op string, out, a, b C.CUdeviceptr, p tensor.MatMulParams, what string) {
	name, threads, shared := "gemm_f32", 256, 0
	if d != tensor.Float32 {
		// gemm_wmma_impl's shared memory: two 64×16 slices, a 64×64 float tile, 32 bytes of alignment slack.
		name, threads, shared = "gemm_wmma"+suffix(d), 128, 2*64*16*d.Size()+64*64*4+32
	}
	// struct Gemm { int M, N, K, transA, transB; int64_t strideA, strideB; } (kernels/matmul.cu)
	rec := make([]byte, 0, 40)
	for _, v := range []int{p.M, p.N, p.K, b2i(p.TransA), b2i(p.TransB)} {
		rec = binary.LittleEndian.AppendUint32(rec, uint32(v))
	}
	rec = append(rec, 0, 0, 0, 0)
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
