// Sums over the middle axis of [outer, n, inner], in float. CPU reference:
// cpu/reduce.go.
#include "common.cuh"

// reduce_cols: one thread per (outer, inner) output, looping over n (inner > 1).
template <typename T> __device__ void reduce_cols_impl(T *y, const T *x, int64_t outer, int64_t n, int64_t inner) {
    FOR_EACH(i, outer * inner) {
        int64_t o = i / inner, in = i % inner;
        float s = 0.f;
        for (int64_t j = 0; j < n; j++) s += to_f(x[(o * n + j) * inner + in]);
        y[i] = from_f<T>(s);
    }
}
KERNEL3(reduce_cols, (void *y, const void *x, int64_t outer, int64_t n, int64_t inner), ((T *)y, (const T *)x, outer, n, inner))

// reduce_rows: one block per outer row of n contiguous values (inner == 1).
template <typename T> __device__ void reduce_rows_impl(T *y, const T *x, int64_t n) {
    const T *row = x + blockIdx.x * n;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += to_f(row[j]);
    s = block_sum(s);
    if (threadIdx.x == 0) y[blockIdx.x] = from_f<T>(s);
}
KERNEL3(reduce_rows, (void *y, const void *x, int64_t n), ((T *)y, (const T *)x, n))
