// Nearest 2× upsampling and its backward: x [planes, h, w] -> y [planes, 2h, 2w],
// each value a 2×2 block; the backward sums each block. One thread per output
// element; the index divisions go through Divisor (common.cuh). CPU reference:
// cpu/upsample.go.
#include "common.cuh"

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
