// Helpers shared by every kernel file: element types, float conversion, op
// codes (numbered as tensor.UnaryOp and tensor.BinaryOp in Go), block
// reductions. Kernels compute in float and store in the buffer's type; each
// op is instantiated for float (_f32), __half (_f16) and __nv_bfloat16 (_bf16).
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

// Hooks for the CPU emulator (cuda/emu/emu.h defines them when it compiles
// these sources with g++): EMU_REGISTER records a kernel by name,
// DYNAMIC_SHARED declares the launch's dynamic shared memory.
#ifndef RF_EMU
#define EMU_REGISTER(fn)
#define DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#endif

typedef __half f16;
typedef __nv_bfloat16 bf16;

// The helpers have internal linkage: each kernel file keeps its own copy
// (in the emulator that includes the shared arrays of block_sum and
// block_max, which it places in a section of its own to poison them).
namespace {

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(f16 x) { return __half2float(x); }
__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ f16 from_f<f16>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }
__device__ __forceinline__ float siluf(float x) { return x * sigmoidf(x); }
// silu_deriv: d/dx x·σ(x) = σ(x)·(1 + x·(1-σ(x))).
__device__ __forceinline__ float silu_deriv(float x) {
    float s = sigmoidf(x);
    return s * (1.f + x * (1.f - s));
}

// Unary ops, as tensor.UnaryOp.
enum { OP_SILU, OP_GELU, OP_QUICK_GELU, OP_SIGMOID, OP_EXP, OP_ABS, OP_SQUARE, OP_SQRT };
// Binary ops, as tensor.BinaryOp.
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

// Grid-stride loop over n elements (64-bit indices: SD tensors pass 2^31 bytes).
#define FOR_EACH(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)blockDim.x * gridDim.x)

// Vec is N elements moved by one wide access: 16 bytes (VEC<T> elements) is
// one LDG.128/STG.128. Memory-bound kernels move a Vec per thread where the
// layout allows: with one 2-byte f16 access per thread an SM keeps a quarter
// of the bytes in flight that it needs to stream at full bandwidth.
template <typename T, int N> struct alignas(sizeof(T) * N) Vec {
    T v[N];
};
template <typename T> struct VecLen {
    enum { value = 16 / sizeof(T) };
};
#define VEC(T) VecLen<T>::value

// vec_aligned: whether p may be read or written as a Vec<T, N>.
template <typename T, int N> __device__ __forceinline__ bool vec_aligned(const T *p) {
    return ((uintptr_t)p & (sizeof(Vec<T, N>) - 1)) == 0;
}
template <int N, typename T> __device__ __forceinline__ Vec<T, N> load_vec(const T *p) {
#ifdef RF_EMU
    Vec<T, N> r; // g++ may assume an f16 array is never read as a Vec
    memcpy((void *)&r, p, sizeof r);
    return r;
#else
    // Through uint4: an aggregate copy of the Vec is sometimes split into
    // 32-bit accesses.
    union {
        Vec<T, N> v;
        uint4 u[sizeof(Vec<T, N>) / 16];
    } r;
#pragma unroll
    for (int i = 0; i < (int)(sizeof r / 16); i++) r.u[i] = ((const uint4 *)p)[i];
    return r.v;
#endif
}
template <int N, typename T> __device__ __forceinline__ void store_vec(T *p, const Vec<T, N> &r) {
#ifdef RF_EMU
    memcpy((void *)p, &r, sizeof r);
#else
    union {
        Vec<T, N> v;
        uint4 u[sizeof(Vec<T, N>) / 16];
    } w;
    w.v = r;
#pragma unroll
    // __stcg (st.global.cg: kept in L2, where the next kernel reads it): a
    // plain uint4 store was still split into four in groupnorm_apply.
    for (int i = 0; i < (int)(sizeof w / 16); i++) __stcg((uint4 *)p + i, w.u[i]);
#endif
}

// Sum over a block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    int warps = blockDim.x >> 5;
    v = lane < warps ? partial[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    return v;
}

// Divisor divides by a value fixed for the launch with a multiply-high, an
// add and a shift (Granlund and Montgomery's method, in the form of PyTorch's
// IntDivider) instead of the division sequence nvcc emits for a runtime
// divisor: about 20 instructions, and for 64-bit operands a range check in
// front of it. Index-mapping kernels (im2col, permutes, concat, broadcasts)
// do a few divisions per element and little else, so the sequence made them
// compute-bound. The host fills m and s (cuda/divisor.go) when d < 2^31;
// quot takes a plain division when d or n is wider than that.
struct Divisor {
    int64_t d;
    uint32_t m, s;
};

__device__ __forceinline__ int64_t quot(int64_t n, const Divisor &v) {
    if ((uint64_t)(n | v.d) <= (uint64_t)INT32_MAX) return (int64_t)((__umulhi((uint32_t)n, v.m) + (uint32_t)n) >> v.s);
    return n / v.d;
}

// align32 rounds p up to 32 bytes, the alignment WMMA loads and stores need;
// kernels that carve WMMA tiles out of dynamic shared memory ask for 32
// bytes of slack and start there. It adds an offset to p rather than rounding
// the address as an integer: a pointer rebuilt from an integer loses its
// shared address space, and every access through it compiles to a generic
// LD/ST with 64-bit address arithmetic instead of LDS/STS.
__device__ __forceinline__ char *align32(char *p) { return p + ((32u - (unsigned)(uintptr_t)p) & 31u); }

// Maximum over a block, as block_sum.
__device__ __forceinline__ float block_max(float v) {
    __shared__ float partial[32];
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    int warps = blockDim.x >> 5;
    v = lane < warps ? partial[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
    return v;
}

} // namespace

// Instantiates a templated __device__ body name_impl<T> as the kernels
// name_f32, name_f16 and name_bf16. Buffers cross the C boundary as void
// pointers; inside args, T is the element type: KERNEL3(scale, (void *y, const
// void *x, int64_t n), ((T *)y, (const T *)x, n)).
#define KERNEL3(name, params, args)                                                         \
    extern "C" __global__ void name##_f32 params { typedef float T; name##_impl<T> args; } \
    extern "C" __global__ void name##_f16 params { typedef f16 T; name##_impl<T> args; }   \
    extern "C" __global__ void name##_bf16 params { typedef bf16 T; name##_impl<T> args; } \
    EMU_REGISTER(name##_f32) EMU_REGISTER(name##_f16) EMU_REGISTER(name##_bf16)
