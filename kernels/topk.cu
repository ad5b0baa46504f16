// The masked top-k mean of the RFNet box loss and its backward. CPU
// reference: cpu/topk.go.
#include "common.cuh"

// topk_rank is one block's work on row r = blockIdx.x: the masked row goes
// into val and pos [pow2] (pow2 the power of two >= cols, the tail padded
// with -inf at position INT32_MAX), is sorted bitonically on the key (value
// descending, position ascending), so ties go to the lower position as on the
// CPU, and the first k are averaged into y[r] with their positions kept in
// idx[r·k, (r+1)·k). val and pos belong to this block alone: shared memory
// (topk_mean) or the row's slice of a scratch buffer in device memory
// (topk_mean_global); __syncthreads orders the block's accesses to either.
template <typename T>
__device__ __forceinline__ void topk_rank(float *val, int32_t *pos, T *y, int32_t *idx, const T *x, const T *mask, int64_t cols, int k,
                                          int maskRows, int pow2) {
    int64_t r = blockIdx.x;
    const T *row = x + r * cols;
    const T *m = mask ? mask + (r % maskRows) * cols : nullptr;
    for (int i = threadIdx.x; i < pow2; i += blockDim.x) {
        if (i < cols) {
            val[i] = to_f(row[i]) * (m ? to_f(m[i]) : 1.f);
            pos[i] = i;
        } else {
            val[i] = -INFINITY;
            pos[i] = INT32_MAX;
        }
    }
    __syncthreads();
    for (int size = 2; size <= pow2; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < pow2; i += blockDim.x) {
                int j = i ^ stride;
                if (j > i) {
                    // "before": a ranks ahead of b (larger value, or equal value and lower position).
                    bool desc = (i & size) == 0;
                    float va = val[i], vb = val[j];
                    int32_t pa = pos[i], pb = pos[j];
                    bool aFirst = va > vb || (va == vb && pa < pb);
                    if (aFirst != desc) {
                        val[i] = vb; val[j] = va;
                        pos[i] = pb; pos[j] = pa;
                    }
                }
            }
            __syncthreads();
        }
    }
    float s = 0.f;
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        s += val[i];
        idx[r * k + i] = pos[i];
    }
    s = block_sum(s);
    if (threadIdx.x == 0) y[r] = from_f<T>(s / k);
}

// topk_mean: one block per row, sorted in shared memory (pow2 at most 4096:
// 32 KiB of values and positions).
template <typename T>
__device__ void topk_mean_impl(T *y, int32_t *idx, const T *x, const T *mask, int64_t cols, int k, int maskRows, int pow2) {
    DYNAMIC_SHARED(unsigned char, smem);
    float *val = (float *)smem;
    topk_rank(val, (int32_t *)(val + pow2), y, idx, x, mask, cols, k, maskRows, pow2);
}
KERNEL3(topk_mean, (void *y, int32_t *idx, const void *x, const void *mask, int64_t cols, int k, int maskRows, int pow2),
        ((T *)y, idx, (const T *)x, (const T *)mask, cols, k, maskRows, pow2))

// topk_mean_global: topk_mean for rows longer than shared memory holds (the
// attention maps above 64×64), sorted in scratch [rows][2·pow2] of device
// memory: each row's pow2 values, then its pow2 positions. The one block of
// a row reads its slice back at every step of the sort, mostly from L2.
template <typename T>
__device__ void topk_mean_global_impl(unsigned char *scratch, T *y, int32_t *idx, const T *x, const T *mask, int64_t cols, int k, int maskRows,
                                      int pow2) {
    float *val = (float *)scratch + (int64_t)blockIdx.x * 2 * pow2;
    topk_rank(val, (int32_t *)(val + pow2), y, idx, x, mask, cols, k, maskRows, pow2);
}
KERNEL3(topk_mean_global, (void *scratch, void *y, int32_t *idx, const void *x, const void *mask, int64_t cols, int k, int maskRows, int pow2),
        ((unsigned char *)scratch, (T *)y, idx, (const T *)x, (const T *)mask, cols, k, maskRows, pow2))

// topk_mean_bwd: dx (zeroed by the launcher) gets dy[r]·mask/k at the chosen positions.
template <typename T>
__device__ void topk_mean_bwd_impl(T *dx, const T *dy, const int32_t *idx, const T *mask, int64_t rows, int64_t cols, int k, int maskRows) {
    FOR_EACH(i, rows * k) {
        int64_t r = i / k;
        int32_t p = idx[i];
        float g = to_f(dy[r]) / k;
        if (mask) g *= to_f(mask[(r % maskRows) * cols + p]);
        dx[r * cols + p] = from_f<T>(g);
    }
}
KERNEL3(topk_mean_bwd, (void *dx, const void *dy, const int32_t *idx, const void *mask, int64_t rows, int64_t cols, int k, int maskRows),
        ((T *)dx, (const T *)dy, idx, (const T *)mask, rows, cols, k, maskRows))
