// Layout kernels: permute, strided row copies (concat, slice and its
// backward), expand, nearest 2× upsampling and its backward, embedding
// gather. One thread per output element; the index divisions go through
// Divisor (common.cuh), as these kernels do little else. CPU references: cpu/layout.go,
// cpu/reduce.go (expand), cpu/upsample.go, cpu/gather.go.
#include "common.cuh"

// Permutation of a rank <= 6 tensor: out axis a has oshape[a].d elements
// and reads input stride istride[a].
struct Perm {
    int rank;
    Divisor oshape[6];
    int64_t istride[6];
};

__device__ __forceinline__ int64_t permute_offset(int64_t i, const Perm &p) {
    int64_t rem = i, off = 0;
    for (int ax = p.rank - 1; ax > 0; ax--) {
        int64_t q = quot(rem, p.oshape[ax]);
        off += (rem - q * p.oshape[ax].d) * p.istride[ax];
        rem = q;
    }
    return off + rem * p.istride[0];
}

// permute: unit is 1, or VEC(T) when the launcher (cuda/layout.go) found the
// innermost output axis contiguous in the input too and a whole number of
// Vecs, with every other input stride a whole number of them: a thread then
// moves a Vec.
template <typename T> __device__ void permute_impl(T *y, const T *x, int64_t n, Perm p, int unit) {
    constexpr int N = VEC(T);
    if (unit == N) {
        FOR_EACH(k, n / N) store_vec<N>(y + k * N, load_vec<N>(x + permute_offset(k * N, p)));
        return;
    }
    FOR_EACH(i, n) y[i] = x[permute_offset(i, p)];
}
KERNEL3(permute, (void *y, const void *x, int64_t n, Perm p, int unit), ((T *)y, (const T *)x, n, p, unit))

// copy2d: for o < rows, j < cols.d·unit: dst[o·dstStride + dstOff + j] =
// src[o·srcStride + srcOff + j]. unit is 1, or VEC(T) when the launcher
// (cuda/layout.go) found every row start on both sides aligned to a Vec and
// the row length a whole number of them: cols then counts Vecs.
template <typename T>
__device__ void copy2d_impl(T *dst, const T *src, int64_t rows, Divisor cols, int64_t dstStride, int64_t dstOff, int64_t srcStride, int64_t srcOff,
                            int unit) {
    constexpr int N = VEC(T);
    if (unit == N) {
        FOR_EACH(i, rows * cols.d) {
            int64_t o = quot(i, cols), j = (i - o * cols.d) * N;
            store_vec<N>(dst + o * dstStride + dstOff + j, load_vec<N>(src + o * srcStride + srcOff + j));
        }
        return;
    }
    FOR_EACH(i, rows * cols.d) {
        int64_t o = quot(i, cols), j = i - o * cols.d;
        dst[o * dstStride + dstOff + j] = src[o * srcStride + srcOff + j];
    }
}
KERNEL3(copy2d, (void *dst, const void *src, int64_t rows, Divisor cols, int64_t dstStride, int64_t dstOff, int64_t srcStride, int64_t srcOff, int unit),
        ((T *)dst, (const T *)src, rows, cols, dstStride, dstOff, srcStride, srcOff, unit))

// expand: [outer, inner.d] -> [outer, n, inner.d]; block divides by n·inner.
template <typename T> __device__ void expand_impl(T *y, const T *x, int64_t outer, Divisor block, Divisor inner) {
    FOR_EACH(i, outer * block.d) {
        int64_t o = quot(i, block), in = i - quot(i, inner) * inner.d;
        y[i] = x[o * inner.d + in];
    }
}
KERNEL3(expand, (void *y, const void *x, int64_t outer, Divisor block, Divisor inner), ((T *)y, (const T *)x, outer, block, inner))

// upsample2x: x [planes, h.d, w.d] -> y [planes, 2h, 2w], each value a 2×2
// block; w2 and h2 divide by 2w and 2h.
template <typename T> __device__ void upsample2x_impl(T *y, const T *x, int64_t planes, Divisor h2, Divisor w2) {
    int64_t h = h2.d / 2, w = w2.d / 2;
    FOR_EACH(i, planes * h2.d * w2.d) {
        int64_t row = quot(i, w2), ox = i - row * w2.d, p = quot(row, h2), oy = row - p * h2.d;
        y[i] = x[(p * h + oy / 2) * w + ox / 2];
    }
}
KERNEL3(upsample2x, (void *y, const void *x, int64_t planes, Divisor h2, Divisor w2), ((T *)y, (const T *)x, planes, h2, w2))

template <typename T> __device__ void upsample2x_bwd_impl(T *dx, const T *dy, int64_t planes, Divisor hd, Divisor wd) {
    int64_t h = hd.d, w = wd.d;
    FOR_EACH(i, planes * h * w) {
        int64_t row = quot(i, wd), x = i - row * w, p = quot(row, hd), y = row - p * h;
        const T *r0 = dy + (p * 2 * h + 2 * y) * 2 * w, *r1 = r0 + 2 * w;
        dx[i] = from_f<T>(to_f(r0[2 * x]) + to_f(r0[2 * x + 1]) + to_f(r1[2 * x]) + to_f(r1[2 * x + 1]));
    }
}
KERNEL3(upsample2x_bwd, (void *dx, const void *dy, int64_t planes, Divisor h, Divisor w), ((T *)dx, (const T *)dy, planes, h, w))

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
