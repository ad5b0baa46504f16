// Group norm and layer norm, forward and backward, with float statistics.
// Group norm: x [N, C, HW]; one block per (sample, group), whose elements are
// the contiguous run of C/G·HW values. Layer norm: x [rows, cols]; one block
// per row. Mean and 1/sqrt(var+eps) are written as float whatever T is, and
// the backward reads them back. CPU references: cpu/groupnorm.go, cpu/layernorm.go.
#include "common.cuh"

// moments: two passes over n values starting at x (mean, then squared deviations).
template <typename T> __device__ void moments(const T *x, int64_t n, float eps, float *mean, float *rstd) {
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += to_f(x[i]);
    float mu = block_sum(s) / n;
    float ss = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) { float d = to_f(x[i]) - mu; ss += d * d; }
    float var = block_sum(ss) / n;
    *mean = mu;
    *rstd = rsqrtf(var + eps);
}

template <typename T>
__device__ void groupnorm_impl(T *y, float *mean, float *rstd, const T *x, const T *gamma, const T *beta,
                               int C, int64_t HW, int G, float eps) {
    int ng = blockIdx.x, g = ng % G, cpg = C / G;
    int64_t size = cpg * HW;
    const T *seg = x + ng * size;
    float mu, rs;
    moments(seg, size, eps, &mu, &rs);
    if (threadIdx.x == 0) { mean[ng] = mu; rstd[ng] = rs; }
    for (int64_t i = threadIdx.x; i < size; i += blockDim.x) {
        int c = g * cpg + (int)(i / HW);
        float v = (to_f(seg[i]) - mu) * rs;
        if (gamma) v *= to_f(gamma[c]);
        if (beta) v += to_f(beta[c]);
        y[ng * size + i] = from_f<T>(v);
    }
}
KERNEL3(groupnorm, (void *y, float *mean, float *rstd, const void *x, const void *gamma, const void *beta, int C, int64_t HW, int G, float eps),
        ((T *)y, mean, rstd, (const T *)x, (const T *)gamma, (const T *)beta, C, HW, G, eps))

// normalized backward over one group of n values: dx = rstd·(g - mean(g) - x̂·mean(g·x̂)), g = dy·gamma.
template <typename T>
__device__ void norm_bwd(T *dx, const T *x, const T *dy, const T *gamma, int64_t n, int64_t gammaDiv, int gammaOff,
                         float mu, float rs) {
    float sg = 0.f, sgx = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float g = to_f(dy[i]) * (gamma ? to_f(gamma[gammaOff + i / gammaDiv]) : 1.f);
        sg += g;
        sgx += g * (to_f(x[i]) - mu) * rs;
    }
    float mg = block_sum(sg) / n, mgx = block_sum(sgx) / n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float g = to_f(dy[i]) * (gamma ? to_f(gamma[gammaOff + i / gammaDiv]) : 1.f);
        float xh = (to_f(x[i]) - mu) * rs;
        dx[i] = from_f<T>(rs * (g - mg - xh * mgx));
    }
}

template <typename T>
__device__ void groupnorm_bwd_impl(T *dx, const T *x, const T *dy, const float *mean, const float *rstd, const T *gamma,
                                   int C, int64_t HW, int G) {
    int ng = blockIdx.x, cpg = C / G;
    int64_t size = cpg * HW, off = ng * size;
    norm_bwd(dx + off, x + off, dy + off, gamma, size, HW, (ng % G) * cpg, mean[ng], rstd[ng]);
}
KERNEL3(groupnorm_bwd, (void *dx, const void *x, const void *dy, const float *mean, const float *rstd, const void *gamma, int C, int64_t HW, int G),
        ((T *)dx, (const T *)x, (const T *)dy, mean, rstd, (const T *)gamma, C, HW, G))

template <typename T>
__device__ void layernorm_impl(T *y, float *mean, float *rstd, const T *x, const T *gamma, const T *beta, int64_t cols, float eps) {
    int64_t r = blockIdx.x;
    const T *row = x + r * cols;
    float mu, rs;
    moments(row, cols, eps, &mu, &rs);
    if (threadIdx.x == 0) { mean[r] = mu; rstd[r] = rs; }
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
        float v = (to_f(row[i]) - mu) * rs;
        if (gamma) v *= to_f(gamma[i]);
        if (beta) v += to_f(beta[i]);
        y[r * cols + i] = from_f<T>(v);
    }
}
KERNEL3(layernorm, (void *y, float *mean, float *rstd, const void *x, const void *gamma, const void *beta, int64_t cols, float eps),
        ((T *)y, mean, rstd, (const T *)x, (const T *)gamma, (const T *)beta, cols, eps))

template <typename T>
__device__ void layernorm_bwd_impl(T *dx, const T *x, const T *dy, const float *mean, const float *rstd, const T *gamma, int64_t cols) {
    int64_t r = blockIdx.x, off = r * cols;
    norm_bwd(dx + off, x + off, dy + off, gamma, cols, 1, 0, mean[r], rstd[r]);
}
KERNEL3(layernorm_bwd, (void *dx, const void *x, const void *dy, const float *mean, const float *rstd, const void *gamma, int64_t cols),
        ((T *)dx, (const T *)x, (const T *)dy, mean, rstd, (const T *)gamma, cols))
