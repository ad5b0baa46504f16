// Softmax over the last axis, forward and backward: one block per row, the
// row's maximum subtracted before exponentiating, sums in float.
// CPU reference: cpu/softmax.go.
#include "common.cuh"

template <typename T> __device__ void softmax_impl(T *y, const T *x, int64_t cols) {
    const T *row = x + blockIdx.x * cols;
    T *out = y + blockIdx.x * cols;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) m = fmaxf(m, to_f(row[i]));
    m = block_max(m);
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) s += expf(to_f(row[i]) - m);
    float inv = 1.f / block_sum(s);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) out[i] = from_f<T>(expf(to_f(row[i]) - m) * inv);
}
KERNEL3(softmax, (void *y, const void *x, int64_t cols), ((T *)y, (const T *)x, cols))

// dx = y·(dy - Σ dy·y)
template <typename T> __device__ void softmax_bwd_impl(T *dx, const T *y, const T *dy, int64_t cols) {
    int64_t off = blockIdx.x * cols;
    float dot = 0.f;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) dot += to_f(y[off + i]) * to_f(dy[off + i]);
    dot = block_sum(dot);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) dx[off + i] = from_f<T>(to_f(y[off + i]) * (to_f(dy[off + i]) - dot));
}
KERNEL3(softmax_bwd, (void *dx, const void *y, const void *dy, int64_t cols), ((T *)dx, (const T *)y, (const T *)dy, cols))
