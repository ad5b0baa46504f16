// Warp-level tensor-core primitives as the PTX ISA defines them (sm_80+):
// mma.sync.m16n8k16 (f16 or bf16 inputs, f32 accumulate), ldmatrix.m8n8.b16
// (x1/x2/x4, plain and .trans) and cp.async.cg 16-byte copies with their
// commit and wait groups. Unlike WMMA, whose fragment layout is opaque, the
// per-lane layouts are documented, so a kernel can keep the QKᵀ accumulators
// in registers and reuse them as the A operand of P·V.
//
// Under nvcc these are inline PTX; under the CPU emulator (RF_EMU) they are
// cuda/emu/emu_mma.h's implementations of the same layouts, which also check
// that all 32 lanes take part and model cp.async's asynchrony.
//
// Fragment layouts (groupID g = lane >> 2, t = lane % 4; "h2" = two 16-bit
// values in one 32-bit register, the lower index in the lower half):
//   A 16×16 row-major, 4 h2: a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..)
//   B 16×8 (k × n),    2 h2: b0 (k 2t..2t+1, n g), b1 (k 2t+8..2t+9, n g)
//   C/D 16×8 f32,   4 floats: c0,c1 (g, 2t..2t+1), c2,c3 (g+8, 2t..2t+1)
//   ldmatrix: lanes 8i..8i+7 give the row addresses of matrix i (16-byte
//   aligned rows of 8 elements in shared memory); register i of lane l gets
//   row l/4, elements 2(l%4)..+1 of matrix i (.trans: column l/4, rows 2(l%4)..+1).
#pragma once
#include <stdint.h>

#ifdef RF_EMU
// cuda/emu/emu_mma.h (included by emu.h) defines the same functions.
#else

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

// mma_m16n8k16: d = a·b + c for one 16×8 tile, 16-bit inputs of type T.
template <typename T> __device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]);
template <> __device__ __forceinline__ void mma_m16n8k16<__half>(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
template <> __device__ __forceinline__ void mma_m16n8k16<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

// ldmatrix_x1/x2/x4 load 1, 2 or 4 8×8 matrices of 16-bit elements from
// shared memory; p is this lane's row address (lanes 0-7, 0-15 or all 32 are read).
__device__ __forceinline__ void ldmatrix_x1(uint32_t (&r)[1], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t (&r)[1], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

// cp_async16 starts a 16-byte copy global → shared that bypasses L1 (.cg);
// both addresses 16-byte aligned. With valid false it reads nothing and
// writes 16 zero bytes (src-size 0): rows past the end of a matrix.
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0));
}
// cp_async_commit closes the copies this thread issued since the last commit into a group.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// cp_async_wait<N> waits until at most N of this thread's groups are in
// flight; other threads' copies are visible only after a __syncthreads.
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

#endif

// pack_h2 packs two floats into the h2 register of a T (f16 or bf16) operand.
template <typename T> __device__ __forceinline__ uint32_t pack_h2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack_h2<__half>(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    uint32_t r;
    memcpy(&r, &h, 4);
    return r;
}
template <> __device__ __forceinline__ uint32_t pack_h2<__nv_bfloat16>(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    uint32_t r;
    memcpy(&r, &h, 4);
    return r;
}

// cp_async_rows starts the copies of rows [r0, r0+rows) of a row-major
// matrix g (row stride in elements) into shared s[rows][LD], D elements per
// row in 16-byte copies spread over the block's THREADS threads; rows from
// count on are zero-filled. The flash-attention kernels stage their Q, K, V
// (and dO) tiles with it.
template <int THREADS, typename T, int D, int LD>
__device__ __forceinline__ void cp_async_rows(T *s, const T *g, int64_t stride, int r0, int rows, int count) {
    constexpr int C = D / 8; // 16-byte chunks per row
    for (int c = threadIdx.x; c < rows * C; c += THREADS) {
        int r = c / C, col = (c % C) * 8;
        bool valid = r0 + r < count;
        cp_async16(s + r * LD + col, valid ? g + (r0 + r) * stride + col : g, valid);
    }
}
