// The matmul kernels used when no cuBLAS library is found (named gemm_*, the
// BLAS routine they stand in for): C[b] = op(A[b])·op(B[b]) (+ C[b] with
// accumulate: Linear's and Conv2d's bias and residual, written into C first),
// row-major, with transposes and batch strides as tensor.MatMulParams.
// gemm_wmma_{f16,bf16}: tensor cores (WMMA 16×16×16, float accumulation); a
// block of 4 warps computes a 64×64 tile of C, staging 64×16 slices of A and
// 16×64 slices of B through shared memory with zero padding at the edges.
// gemm_f32: a 64×64 tile per block of 256 threads on CUDA cores, 4×4 per thread.
// CPU reference: cpu/matmul.go.
#include "common.cuh"
#ifndef RF_EMU
#include <mma.h>
#endif
using namespace nvcuda;

struct Gemm {
    int M, N, K;
    int transA, transB;
    int accumulate;   // 1: C += products (C holds bias and residual already), 0: C = products
    int64_t strideA, strideB; // batch strides in elements (0: shared)
};

// element (r, c) of op(A) [M×K] and op(B) [K×N]; zero outside.
template <typename T> __device__ __forceinline__ T loadA(const T *A, const Gemm &g, int r, int c) {
    if (r >= g.M || c >= g.K) return from_f<T>(0.f);
    return g.transA ? A[(int64_t)c * g.M + r] : A[(int64_t)r * g.K + c];
}
template <typename T> __device__ __forceinline__ T loadB(const T *B, const Gemm &g, int r, int c) {
    if (r >= g.K || c >= g.N) return from_f<T>(0.f);
    return g.transB ? B[(int64_t)c * g.K + r] : B[(int64_t)r * g.N + c];
}

// The A and B slices and the C tile live in dynamic shared memory (the CUDA
// emulator poisons it per block; it cannot poison static arrays in
// templates): 2·64·16 elements, 64·64 floats, and 32 bytes of slack for align32.
template <typename T> __device__ void gemm_wmma_impl(T *C, const T *A, const T *B, Gemm g) {
    DYNAMIC_SHARED(char, gemm_smem);
    char *base = align32(gemm_smem);
    T(*as)[16] = (T(*)[16])base;
    T(*bs)[64] = (T(*)[64])(base + 64 * 16 * sizeof(T));
    float(*cs)[64] = (float(*)[64])(base + 2 * 64 * 16 * sizeof(T));
    int64_t b = blockIdx.z;
    A += b * g.strideA;
    B += b * g.strideB;
    C += b * (int64_t)g.M * g.N;
    int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
    int warp = threadIdx.x >> 5, wm = warp >> 1, wn = warp & 1;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
    for (int k0 = 0; k0 < g.K; k0 += 16) {
        for (int i = threadIdx.x; i < 64 * 16; i += blockDim.x) {
            as[i / 16][i % 16] = loadA(A, g, m0 + i / 16, k0 + i % 16);
            bs[i / 64][i % 64] = loadB(B, g, k0 + i / 64, n0 + i % 64);
        }
        __syncthreads();
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb[2];
        for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &as[wm * 32 + i * 16][0], 16);
        for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], &bs[0][wn * 32 + j * 16], 64);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        __syncthreads();
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) wmma::store_matrix_sync(&cs[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], 64, wmma::mem_row_major);
    __syncthreads();
    for (int i = threadIdx.x; i < 64 * 64; i += blockDim.x) {
        int r = m0 + i / 64, c = n0 + i % 64;
        if (r < g.M && c < g.N) {
            int64_t o = (int64_t)r * g.N + c;
            C[o] = from_f<T>(cs[i / 64][i % 64] + (g.accumulate ? to_f(C[o]) : 0.f));
        }
    }
}
extern "C" __global__ void gemm_wmma_f16(void *C, const void *A, const void *B, Gemm g) { gemm_wmma_impl<f16>((f16 *)C, (const f16 *)A, (const f16 *)B, g); }
extern "C" __global__ void gemm_wmma_bf16(void *C, const void *A, const void *B, Gemm g) { gemm_wmma_impl<bf16>((bf16 *)C, (const bf16 *)A, (const bf16 *)B, g); }
EMU_REGISTER(gemm_wmma_f16)
EMU_REGISTER(gemm_wmma_bf16)

extern "C" __global__ void gemm_f32(void *Cv, const void *Av, const void *Bv, Gemm g) {
    __shared__ float as[16][64 + 1];
    __shared__ float bs[16][64 + 1];
    int64_t b = blockIdx.z;
    const float *A = (const float *)Av + b * g.strideA, *B = (const float *)Bv + b * g.strideB;
    float *C = (float *)Cv + b * (int64_t)g.M * g.N;
    int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
    int tr = threadIdx.x / 16, tc = threadIdx.x % 16; // 16×16 threads, 4×4 outputs each
    float acc[4][4] = {};
    for (int k0 = 0; k0 < g.K; k0 += 16) {
        for (int i = threadIdx.x; i < 16 * 64; i += blockDim.x) {
            int kk = i / 64, mm = i % 64;
            as[kk][mm] = loadA(A, g, m0 + mm, k0 + kk);
            bs[kk][mm] = loadB(B, g, k0 + kk, n0 + mm);
        }
        __syncthreads();
        for (int kk = 0; kk < 16; kk++)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] += as[kk][tr * 4 + i] * bs[kk][tc * 4 + j];
        __syncthreads();
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int r = m0 + tr * 4 + i, c = n0 + tc * 4 + j;
            if (r < g.M && c < g.N) C[(int64_t)r * g.N + c] = acc[i][j] + (g.accumulate ? C[(int64_t)r * g.N + c] : 0.f);
        }
}
EMU_REGISTER(gemm_f32)
