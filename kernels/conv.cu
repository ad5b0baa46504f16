// Convolution as im2col + GEMM (the GEMM runs in cuBLAS or matmul.cu): im2col
// gathers the input patches of one sample into col [C·KH·KW, OH·OW]; col2im is
// its adjoint for the input gradient (a gather, not atomics, so it is
// deterministic) where kernels/conv_implicit.cu does not take the shape;
// add_bias adds bias[o] (and a residual) into out [N, O, P].
// CPU reference: cpu/conv.go.
#include "common.cuh"
#include "conv.cuh"

// im2col: one thread per input channel and output position, writing that
// position's KH·KW taps (each tap a coalesced row of col). ow divides by OW,
// plane by OH·OW.
//
// unit is 1, or VEC(T) when the launcher (cuda/conv.go) found an output row
// a whole number of Vecs (SD's planes are, 8² to 512²): a thread then takes N
// neighbouring positions of a row and writes each tap as one Vec, an eighth
// of the store instructions in f16, which made im2col, whose output is
// KH·KW times its input, store-bound. ow and plane then divide by OW/N and P/N.
template <typename T> __device__ void im2col_impl(T *col, const T *x, Conv p, Divisor ow, Divisor plane, int unit) {
    int64_t P = (int64_t)p.OH * p.OW;
    constexpr int N = VEC(T);
    if (unit == N) {
        int64_t Pv = P / N;
        FOR_EACH(i, (int64_t)p.C * Pv) {
            int64_t c = quot(i, plane), q = (i - c * Pv) * N;
            int oy = (int)quot(q / N, ow), ox0 = (int)q - oy * p.OW;
            const T *xc = x + c * p.H * p.W;
            T *out = col + c * p.KH * p.KW * P + q;
            for (int ky = 0; ky < p.KH; ky++) {
                int iy = oy * p.stride + ky - p.pad;
                bool rowIn = iy >= 0 && iy < p.H;
                const T *xr = xc + (int64_t)iy * p.W;
                for (int kx = 0; kx < p.KW; kx++, out += P) {
                    Vec<T, N> v;
#pragma unroll
                    for (int j = 0; j < N; j++) {
                        int ix = (ox0 + j) * p.stride + kx - p.pad;
                        v.v[j] = rowIn && ix >= 0 && ix < p.W ? xr[ix] : from_f<T>(0.f);
                    }
                    store_vec<N>(out, v);
                }
            }
        }
        return;
    }
    FOR_EACH(i, (int64_t)p.C * P) {
        int64_t c = quot(i, plane), q = i - c * P;
        int oy = (int)quot(q, ow), ox = (int)q - oy * p.OW;
        const T *xc = x + c * p.H * p.W;
        T *out = col + c * p.KH * p.KW * P + q;
        for (int ky = 0; ky < p.KH; ky++) {
            int iy = oy * p.stride + ky - p.pad;
            bool rowIn = iy >= 0 && iy < p.H;
            for (int kx = 0; kx < p.KW; kx++, out += P) {
                int ix = ox * p.stride + kx - p.pad;
                *out = rowIn && ix >= 0 && ix < p.W ? xc[(int64_t)iy * p.W + ix] : from_f<T>(0.f);
            }
        }
    }
}
KERNEL3(im2col, (void *col, const void *x, Conv p, Divisor ow, Divisor plane, int unit), ((T *)col, (const T *)x, p, ow, plane, unit))

// col2im: one thread per input element, summing the taps that read it (a
// gather: deterministic, no atomics). w divides by W, plane by H·W, stride
// by the stride.
template <typename T> __device__ void col2im_impl(T *dx, const T *col, Conv p, Divisor w, Divisor plane, Divisor stride) {
    int64_t ohw = (int64_t)p.OH * p.OW, hw = (int64_t)p.H * p.W;
    FOR_EACH(i, (int64_t)p.C * hw) {
        int64_t c = quot(i, plane), r = i - c * hw;
        int iy = (int)quot(r, w), ix = (int)r - iy * p.W;
        const T *cc = col + c * p.KH * p.KW * ohw;
        float s = 0.f;
        for (int ky = 0; ky < p.KH; ky++) {
            int ty = iy + p.pad - ky;
            if (ty < 0) continue;
            int oy = (int)quot(ty, stride);
            if (oy * p.stride != ty || oy >= p.OH) continue;
            for (int kx = 0; kx < p.KW; kx++) {
                int tx = ix + p.pad - kx;
                if (tx < 0) continue;
                int ox = (int)quot(tx, stride);
                if (ox * p.stride != tx || ox >= p.OW) continue;
                s += to_f(cc[(int64_t)(ky * p.KW + kx) * ohw + oy * p.OW + ox]);
            }
        }
        dx[i] = from_f<T>(s);
    }
}
KERNEL3(col2im, (void *dx, const void *col, Conv p, Divisor w, Divisor plane, Divisor stride),
        ((T *)dx, (const T *)col, p, w, plane, stride))

// add_bias: out [n, O, P] = src + bias[o], src being out itself (the bias
// after a product) or a residual (bias and residual written before a product
// that adds onto them: cuda/matmul.go's gemmAdd); bias may be null then.
// plane divides by P, channels by O.
// unit is 1, or VEC(T) when the launcher (cuda/conv.go) found P a whole
// number of Vecs: a thread then adds to a Vec of a plane.
template <typename T>
__device__ void add_bias_impl(T *out, const T *src, const T *bias, int64_t n, Divisor plane, Divisor channels, int unit) {
    constexpr int N = VEC(T);
    int64_t total = n * channels.d * plane.d;
    if (unit == N) {
        FOR_EACH(k, total / N) {
            int64_t row = quot(k * N, plane);
            float c = bias ? to_f(bias[row - quot(row, channels) * channels.d]) : 0.f;
            Vec<T, N> v = load_vec<N>(src + k * N);
#pragma unroll
            for (int j = 0; j < N; j++) v.v[j] = from_f<T>(to_f(v.v[j]) + c);
            store_vec<N>(out + k * N, v);
        }
        return;
    }
    FOR_EACH(i, total) {
        int64_t row = quot(i, plane);
        float c = bias ? to_f(bias[row - quot(row, channels) * channels.d]) : 0.f;
        out[i] = from_f<T>(to_f(src[i]) + c);
    }
}
KERNEL3(add_bias, (void *out, const void *src, const void *bias, int64_t n, Divisor plane, Divisor channels, int unit),
        ((T *)out, (const T *)src, (const T *)bias, n, plane, channels, unit))
