// Combine: rows linear combinations of the k slices of x [k, n], y[r, i] =
// Σ_j coef[r, j]·x[j, i]. A denoising step is one (sched: the latent, the
// model outputs and the scheduler's history in, the next state out), so it
// reads the coefficients from device memory: a CUDA graph of the step keeps
// its kernel arguments and gets each step's coefficients by a refill of
// coef. The output is a fresh buffer (the op is not in place). Block row
// blockIdx.y computes output row r; the sum runs in j order in float, as
// the CPU twin's (cpu/combine.go). The k coefficients of a row are read by
// every thread: a few floats that stay in L1.
#include "common.cuh"

template <typename T> __device__ void combine_impl(T *y, const float *coef, const T *x, int k, int64_t n) {
    const int r = blockIdx.y;
    const float *c = coef + (int64_t)r * k;
    T *out = y + (int64_t)r * n;
    FOR_EACH(i, n) {
        float acc = 0.f;
        for (int j = 0; j < k; j++) acc += c[j] * to_f(x[(int64_t)j * n + i]);
        out[i] = from_f<T>(acc);
    }
}
KERNEL3(combine, (void *y, const float *coef, const void *x, int k, int64_t n), ((T *)y, coef, (const T *)x, k, n))
