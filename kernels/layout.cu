// Layout kernels: permute, strided row copies (concat, slice and its
// backward), expand, nearest 2× upsampling and its backward, embedding
// gather. One thread per output element. CPU references: cpu/layout.go,
// cpu/reduce.go (expand), cpu/upsample.go, cpu/gather.go.
#include "common.cuh"

// Permutation of a rank <= 6 tensor: out axis a reads input stride istride[a].
struct Perm {
    int rank;
    int64_t oshape[6];
    int64_t istride[6];
};

template <typename T> __device__ void permute_impl(T *y, const T *x, int64_t n, Perm p) {
    FOR_EACH(i, n) {
        int64_t rem = i, off = 0;
        for (int ax = p.rank - 1; ax >= 0; ax--) {
            off += (rem % p.oshape[ax]) * p.istride[ax];
            rem /= p.oshape[ax];
        }
        y[i] = x[off];
    }
}
KERNEL3(permute, (void *y, const void *x, int64_t n, Perm p), ((T *)y, (const T *)x, n, p))

// copy2d: for o < rows, j < cols: dst[o·dstStride + dstOff + j] = src[o·srcStride + srcOff + j].
template <typename T>
__device__ void copy2d_impl(T *dst, const T *src, int64_t rows, int64_t cols, int64_t dstStride, int64_t dstOff, int64_t srcStride, int64_t srcOff) {
    FOR_EACH(i, rows * cols) {
        int64_t o = i / cols, j = i % cols;
        dst[o * dstStride + dstOff + j] = src[o * srcStride + srcOff + j];
    }
}
KERNEL3(copy2d, (void *dst, const void *src, int64_t rows, int64_t cols, int64_t dstStride, int64_t dstOff, int64_t srcStride, int64_t srcOff),
        ((T *)dst, (const T *)src, rows, cols, dstStride, dstOff, srcStride, srcOff))

// expand: [outer, inner] -> [outer, n, inner].
template <typename T> __device__ void expand_impl(T *y, const T *x, int64_t outer, int64_t n, int64_t inner) {
    FOR_EACH(i, outer * n * inner) {
        int64_t o = i / (n * inner), in = i % inner;
        y[i] = x[o * inner + in];
    }
}
KERNEL3(expand, (void *y, const void *x, int64_t outer, int64_t n, int64_t inner), ((T *)y, (const T *)x, outer, n, inner))

// upsample2x: x [planes, h, w] -> y [planes, 2h, 2w], each value a 2×2 block.
template <typename T> __device__ void upsample2x_impl(T *y, const T *x, int64_t planes, int64_t h, int64_t w) {
    FOR_EACH(i, planes * 4 * h * w) {
        int64_t ox = i % (2 * w), oy = (i / (2 * w)) % (2 * h), p = i / (4 * h * w);
        y[i] = x[(p * h + oy / 2) * w + ox / 2];
    }
}
KERNEL3(upsample2x, (void *y, const void *x, int64_t planes, int64_t h, int64_t w), ((T *)y, (const T *)x, planes, h, w))

template <typename T> __device__ void upsample2x_bwd_impl(T *dx, const T *dy, int64_t planes, int64_t h, int64_t w) {
    FOR_EACH(i, planes * h * w) {
        int64_t x = i % w, y = (i / w) % h, p = i / (h * w);
        const T *r0 = dy + (p * 2 * h + 2 * y) * 2 * w, *r1 = r0 + 2 * w;
        dx[i] = from_f<T>(to_f(r0[2 * x]) + to_f(r0[2 * x + 1]) + to_f(r1[2 * x]) + to_f(r1[2 * x + 1]));
    }
}
KERNEL3(upsample2x_bwd, (void *dx, const void *dy, int64_t planes, int64_t h, int64_t w), ((T *)dx, (const T *)dy, planes, h, w))

// gather: rows ids[i] of table [rows, dim]; an id out of range writes zeros
// and sets *bad (the launcher reports it).
template <typename T> __device__ void gather_impl(T *y, const T *table, const int32_t *ids, int64_t n, int64_t dim, int64_t rows, int32_t *bad) {
    FOR_EACH(i, n * dim) {
        int32_t id = ids[i / dim];
        if (id < 0 || id >= rows) {
            *bad = 1;
            y[i] = from_f<T>(0.f);
        } else {
            y[i] = table[(int64_t)id * dim + i % dim];
        }
    }
}
KERNEL3(gather, (void *y, const void *table, const int32_t *ids, int64_t n, int64_t dim, int64_t rows, int32_t *bad),
        ((T *)y, (const T *)table, ids, n, dim, rows, bad))
