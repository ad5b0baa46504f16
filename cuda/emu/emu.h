// The CUDA emulator's device-side header, force-included (g++ -include) before
// each kernels/*.cu when the kernels are compiled for the CPU.
//
// Why: most tasks of this project have no GPU, yet the CUDA backend must be
// tested on every change. The emulator is a fake libcuda (and libcublas) that
// the backend loads through RFNET_LIBCUDA / RFNET_LIBCUBLAS instead of the
// NVIDIA driver. It runs the very same kernel sources on the CPU: each block's
// threads are fibers, __syncthreads and warp shuffles are barriers between
// them, WMMA fragments hold whole tiles, mma.sync / ldmatrix / cp.async
// follow the PTX ISA's per-lane layouts (emu_mma.h, async.cc), device memory is host memory with
// every allocation tracked. So the Go side (argument packing, launch shapes,
// shared-memory sizes, strides of the cuBLAS calls, the allocator) and the
// kernels' indexing and synchronisation are exercised by the parity tests
// without a GPU. It says nothing about speed, and float rounding of the math
// functions differs slightly from the GPU's.
#pragma once
#define RF_EMU 1

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <math.h>

#include "runtime.h"

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __align__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Blocks run one at a time, so a static is the block's shared memory; the
// scheduler poisons the section at each block's start.
#define __shared__ static __attribute__((section("emu_shared")))
#define __align__(n) __attribute__((aligned(n)))

namespace emu {
extern Dim3 g_blockIdx, g_blockDim, g_gridDim;
const Dim3 &thread_idx();
unsigned lane();
void sync_block();
void sync_warp(const char *what);
void *dynamic_shared();
uint64_t *warp_slots(); // 32 exchange slots of the current warp
WarpScratch &warp_scratch(); // per warp, for warp-collective operations

// shuffle returns lane src's v: every lane writes its value in the warp's
// slots, the warp meets, each reads its source (see warp_slots).
template <class T> T shuffle(unsigned mask, T v, int src, int width) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 64 bits");
    if (mask != 0xffffffffu || width != 32) sync_warp("shuffle with a partial mask or width (unsupported by the emulator)");
    uint64_t *slots = warp_slots();
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    slots[lane()] = bits;
    sync_warp("shuffle");
    uint64_t got = slots[src & 31];
    T r;
    std::memcpy(&r, &got, sizeof(T));
    return r;
}
} // namespace emu

#define threadIdx (emu::thread_idx())
#define blockIdx (emu::g_blockIdx)
#define blockDim (emu::g_blockDim)
#define gridDim (emu::g_gridDim)
#define __syncthreads() emu::sync_block()
#define __syncwarp(...) emu::sync_warp("__syncwarp")

template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32) {
    return emu::shuffle(mask, v, (int)emu::lane() ^ laneMask, width);
}
template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return emu::shuffle(mask, v, src, width);
}
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    int src = (int)emu::lane() + (int)delta;
    return emu::shuffle(mask, v, src < 32 ? src : (int)emu::lane(), width);
}

inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }

// The 16-byte vector type of 128-bit loads and stores (built into nvcc).
struct __attribute__((aligned(16))) uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
// The float pair of partial statistics (built into nvcc).
struct __attribute__((aligned(8))) float2 {
    float x, y;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }

#define DYNAMIC_SHARED(type, name) type *name = (type *)emu::dynamic_shared()
#define EMU_REGISTER(fn) static emu::Registrar emu_reg_##fn(RF_EMU_MODULE, #fn, fn);

// WMMA: a fragment holds its whole tile in every lane (the hardware spreads it
// over the warp); loads, stores and mma_sync are warp-collective, so each
// meets the warp first, and each checks the alignment the hardware requires.
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K> struct tile_shape;
template <int M, int N, int K> struct tile_shape<matrix_a, M, N, K> { static constexpr int rows = M, cols = K; };
template <int M, int N, int K> struct tile_shape<matrix_b, M, N, K> { static constexpr int rows = K, cols = N; };
template <int M, int N, int K> struct tile_shape<accumulator, M, N, K> { static constexpr int rows = M, cols = N; };

// Kernels never see the hardware's per-lane element layout: there is no x[].
template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static constexpr int rows = tile_shape<Use, M, N, K>::rows, cols = tile_shape<Use, M, N, K>::cols;
    T tile[rows * cols];
};

void check_wmma_pointer(const void *p, unsigned ldm, size_t elem, const char *what);

template <class T> inline float wf(T v) { return (float)v; }
inline float wf(__half v) { return __half2float(v); }
inline float wf(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class Use, int M, int N, int K, class T, class L, class V> inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, V v) {
    for (auto &e : f.tile) e = (T)v;
}

template <class Use, int M, int N, int K, class T, class L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const T *p, unsigned ldm) {
    emu::sync_warp("wmma::load_matrix_sync");
    check_wmma_pointer(p, ldm, sizeof(T), "wmma::load_matrix_sync");
    constexpr bool colMajor = std::is_same<L, col_major>::value;
    using F = fragment<Use, M, N, K, T, L>;
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++) f.tile[r * F::cols + c] = colMajor ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}

template <int M, int N, int K, class T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const T *p, unsigned ldm, layout_t layout) {
    emu::sync_warp("wmma::load_matrix_sync");
    check_wmma_pointer(p, ldm, sizeof(T), "wmma::load_matrix_sync");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) f.tile[r * N + c] = layout == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}

template <int M, int N, int K, class T>
inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm, layout_t layout) {
    emu::sync_warp("wmma::store_matrix_sync");
    check_wmma_pointer(p, ldm, sizeof(T), "wmma::store_matrix_sync");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) (layout == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c]) = f.tile[r * N + c];
}

// d = a·b + c with float products and sums, as the tensor cores for 16-bit
// inputs. Every lane holds the same tiles (WMMA takes the same arguments in
// every lane; checked), so lane 0 forms the product once for the warp.
template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
                     const fragment<matrix_b, M, N, K, TB, LB> &b, const fragment<accumulator, M, N, K, TC> &c) {
    static_assert(M * N <= 256, "accumulator tile larger than the emulator's warp scratch");
    emu::WarpScratch &w = emu::warp_scratch();
    if (emu::lane() == 0) w.ptr[0] = &a, w.ptr[1] = &b, w.ptr[2] = &c;
    emu::sync_warp("wmma::mma_sync");
    if (emu::lane() == 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float s = wf(c.tile[i * N + j]);
                for (int l = 0; l < K; l++) s += wf(a.tile[i * K + l]) * wf(b.tile[l * N + j]);
                w.out[i * N + j] = s;
            }
    } else if (std::memcmp(&a, w.ptr[0], sizeof a) || std::memcmp(&b, w.ptr[1], sizeof b) || std::memcmp(&c, w.ptr[2], sizeof c)) {
        emu::device_fault("wmma::mma_sync: the lanes of a warp hold different fragments");
    }
    emu::sync_warp("wmma::mma_sync");
    for (int i = 0; i < M * N; i++) d.tile[i] = (TC)w.out[i];
}
} // namespace wmma
} // namespace nvcuda

#include "emu_mma.h"

