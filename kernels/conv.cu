// Convolution as im2col + GEMM (the GEMM runs in cuBLAS or gemm.cu): im2col
// gathers the input patches of one sample into col [C·KH·KW, OH·OW]; col2im is
// its adjoint for the input gradient (a gather, not atomics, so it is
// deterministic); add_bias adds bias[o] to out [N, O, P]. CPU reference: cpu/conv.go.
#include "common.cuh"

struct Conv {
    int C, H, W, KH, KW, stride, pad, OH, OW;
};

template <typename T> __device__ void im2col_impl(T *col, const T *x, Conv p) {
    int64_t ohw = (int64_t)p.OH * p.OW;
    FOR_EACH(i, (int64_t)p.C * p.KH * p.KW * ohw) {
        int64_t q = i % ohw, rowi = i / ohw;
        int kx = rowi % p.KW, ky = (rowi / p.KW) % p.KH, c = rowi / (p.KW * p.KH);
        int oy = q / p.OW, ox = q % p.OW;
        int iy = oy * p.stride + ky - p.pad, ix = ox * p.stride + kx - p.pad;
        col[i] = (iy >= 0 && iy < p.H && ix >= 0 && ix < p.W) ? x[((int64_t)c * p.H + iy) * p.W + ix] : from_f<T>(0.f);
    }
}
KERNEL3(im2col, (void *col, const void *x, Conv p), ((T *)col, (const T *)x, p))

template <typename T> __device__ void col2im_impl(T *dx, const T *col, Conv p) {
    int64_t ohw = (int64_t)p.OH * p.OW;
    FOR_EACH(i, (int64_t)p.C * p.H * p.W) {
        int ix = i % p.W, iy = (i / p.W) % p.H, c = i / ((int64_t)p.W * p.H);
        float s = 0.f;
        for (int ky = 0; ky < p.KH; ky++) {
            int ty = iy + p.pad - ky;
            if (ty < 0 || ty % p.stride) continue;
            int oy = ty / p.stride;
            if (oy >= p.OH) continue;
            for (int kx = 0; kx < p.KW; kx++) {
                int tx = ix + p.pad - kx;
                if (tx < 0 || tx % p.stride) continue;
                int ox = tx / p.stride;
                if (ox >= p.OW) continue;
                s += to_f(col[(((int64_t)c * p.KH + ky) * p.KW + kx) * ohw + oy * p.OW + ox]);
            }
        }
        dx[i] = from_f<T>(s);
    }
}
KERNEL3(col2im, (void *dx, const void *col, Conv p), ((T *)dx, (const T *)col, p))

template <typename T> __device__ void add_bias_impl(T *out, const T *bias, int64_t n, int64_t O, int64_t P) {
    FOR_EACH(i, n * O * P) out[i] = from_f<T>(to_f(out[i]) + to_f(bias[(i / P) % O]));
}
KERNEL3(add_bias, (void *out, const void *bias, int64_t n, int64_t O, int64_t P), ((T *)out, (const T *)bias, n, O, P))
