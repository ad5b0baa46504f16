// Layout kernels: permute, strided row copies (concat, slice and its
// backward), expand. One thread per output element (or per Vec where the
// launcher found the layout allows it); the index divisions go through
// Divisor (common.cuh), as these kernels do little else. CPU reference:
// cpu/layout.go.
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
