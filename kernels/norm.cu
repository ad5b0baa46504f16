// Group norm and layer norm, forward and backward, with float statistics.
// Group norm: x [N, C, HW]; each (sample, group) is a contiguous run of
// C/G·HW values, streamed by one block (groupnorm, groupnorm_bwd) or, when
// there are too few groups to fill the GPU (SD's 64² layers, the VAE's 256²
// and 512² ones: 32 or 64 runs of 40K to 1M values), cut into slices of one
// block each, in two launches (groupnorm_partial + groupnorm_apply, and the
// same for the backward). A shift [N, C], when given, is added to x as it is
// read (x' = x + shift, repeated over the plane; a ResNet block's time
// embedding), so the sum is never stored. With silu set the group norm is
// fused with the SiLU after it: SiLU is applied in the write, and the
// backward takes dy through it at z = x̂·gamma + beta, recomputed from x,
// shift and the statistics (nothing more is saved). Layer norm: x [rows,
// cols]; one block per row. Mean and 1/sqrt(var+eps) are written as float
// whatever T is, and the backward reads them back. CPU reference: cpu/norm.go.
#include "common.cuh"

// elem: element i of a run starting at x, plus its plane's shift sh[i/HW.d]
// when the run has one (sh then points at the run's first channel).
template <typename T> __device__ __forceinline__ float elem(const T *x, const T *sh, int64_t i, Divisor HW) {
    return sh ? to_f(x[i]) + to_f(sh[quot(i, HW)]) : to_f(x[i]);
}

// run_shift: run ng's channels in shift [N, C] (they are consecutive: run ng
// holds channels ng·cpg to ng·cpg + cpg - 1 of all N·C), or none.
template <typename T> __device__ __forceinline__ const T *run_shift(const T *shift, int64_t ng, int cpg) {
    return shift ? shift + ng * cpg : nullptr;
}

// mean_m2: two passes over the elements [lo, hi) of a run (elem): their
// mean, then the sum of squared deviations from it (M2). One element per
// thread, strided: these passes mostly read what the previous kernel just
// wrote, from L2. (A Vec per thread here changes the summation order, and on
// the emulator's TF32 pass that moved the RFNet box-loss gradient of the
// tiny test model from 2.8e-3 to 1.6e-2 of the float64 reference, past its
// 1e-2: most likely a different pick among near-tied attention values in the
// loss's top-k. Left as it was.)
template <typename T>
__device__ void mean_m2(const T *x, const T *sh, int64_t lo, int64_t hi, Divisor HW, float *mean, float *m2) {
    float s = 0.f;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += elem(x, sh, i, HW);
    float mu = block_sum(s) / (hi - lo);
    float ss = 0.f;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) { float d = elem(x, sh, i, HW) - mu; ss += d * d; }
    *mean = mu;
    *m2 = block_sum(ss);
}

// moments: the mean and 1/sqrt(var+eps) of the n elements of a run.
template <typename T> __device__ void moments(const T *x, const T *sh, int64_t n, Divisor HW, float eps, float *mean, float *rstd) {
    float m2;
    mean_m2(x, sh, 0, n, HW, mean, &m2);
    *rstd = rsqrtf(m2 / n + eps);
}

// groupnorm_write normalizes the elements [lo, hi) of one run (seg and its
// shift sh in, out out), whose element i is in channel c0 + i/HW.d, applying
// SiLU with silu: a Vec per thread when a plane is a whole number of them (a
// Vec is then in one channel) and the range starts aligned.
template <typename T>
__device__ void groupnorm_write(T *out, const T *seg, const T *sh, const T *gamma, const T *beta, int64_t lo, int64_t hi, Divisor HW,
                                int c0, float mu, float rs, bool silu) {
    constexpr int N = VEC(T);
    if (HW.d % N == 0 && (hi - lo) % N == 0 && vec_aligned<T, N>(seg + lo) && vec_aligned<T, N>(out + lo)) {
        for (int64_t k = lo + (int64_t)threadIdx.x * N; k < hi; k += (int64_t)blockDim.x * N) {
            int cl = (int)quot(k, HW), c = c0 + cl;
            // (x - mu)·a + b: not x·a + (b - mu·a), which cancels when mu is
            // large beside the spread.
            float a = gamma ? rs * to_f(gamma[c]) : rs, b = beta ? to_f(beta[c]) : 0.f, t = sh ? to_f(sh[cl]) : 0.f;
            Vec<T, N> v = load_vec<N>(seg + k);
#pragma unroll
            for (int j = 0; j < N; j++) {
                float z = (to_f(v.v[j]) + t - mu) * a + b;
                v.v[j] = from_f<T>(silu ? siluf(z) : z);
            }
            store_vec<N>(out + k, v);
        }
        return;
    }
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        int c = c0 + (int)quot(i, HW);
        float v = (elem(seg, sh, i, HW) - mu) * rs;
        if (gamma) v *= to_f(gamma[c]);
        if (beta) v += to_f(beta[c]);
        out[i] = from_f<T>(silu ? siluf(v) : v);
    }
}

template <typename T>
__device__ void groupnorm_impl(T *y, float *mean, float *rstd, const T *x, const T *shift, const T *gamma, const T *beta,
                               int C, Divisor HW, int G, float eps, int silu) {
    int ng = blockIdx.x, g = ng % G, cpg = C / G;
    int64_t size = cpg * HW.d;
    const T *seg = x + ng * size, *sh = run_shift(shift, ng, cpg);
    float mu, rs;
    moments(seg, sh, size, HW, eps, &mu, &rs);
    if (threadIdx.x == 0) { mean[ng] = mu; rstd[ng] = rs; }
    groupnorm_write(y + ng * size, seg, sh, gamma, beta, 0, size, HW, g * cpg, mu, rs, silu);
}
KERNEL3(groupnorm,
        (void *y, float *mean, float *rstd, const void *x, const void *shift, const void *gamma, const void *beta, int C, Divisor HW, int G,
         float eps, int silu),
        ((T *)y, mean, rstd, (const T *)x, (const T *)shift, (const T *)gamma, (const T *)beta, C, HW, G, eps, silu))

// The normalized backward over a group of n values is
// dx = rstd·(g - mean(g) - x̂·mean(g·x̂)), g = dL/dx̂: dy·gamma, or with silu
// dy·SiLU'(z)·gamma at z = x̂·gamma + beta. Element i of the group has
// gamma[gammaOff + i/gammaDiv.d] (beta likewise, and the shift
// sh[i/gammaDiv.d] when the group has one: see elem). bwd_sums adds g and
// g·x̂ over the elements [lo, hi) (a whole group, or a slice of one);
// bwd_apply writes dx there. Both form g from x and dy, so the SiLU costs no
// memory.
template <typename T>
__device__ __forceinline__ float grad_xhat(float dy, float xh, const T *gamma, const T *beta, int64_t c, bool silu) {
    float gm = gamma ? to_f(gamma[c]) : 1.f;
    if (silu) dy *= silu_deriv(xh * gm + (beta ? to_f(beta[c]) : 0.f));
    return dy * gm;
}

template <typename T>
__device__ void bwd_sums(const T *x, const T *sh, const T *dy, const T *gamma, const T *beta, bool silu, int64_t lo, int64_t hi,
                         Divisor gammaDiv, int gammaOff, float mu, float rs, float *sg, float *sgx) {
    float a = 0.f, b = 0.f;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        float xh = (elem(x, sh, i, gammaDiv) - mu) * rs;
        float g = grad_xhat(to_f(dy[i]), xh, gamma, beta, gammaOff + quot(i, gammaDiv), silu);
        a += g;
        b += g * xh;
    }
    *sg = block_sum(a);
    *sgx = block_sum(b);
}

template <typename T>
__device__ void bwd_apply(T *dx, const T *x, const T *sh, const T *dy, const T *gamma, const T *beta, bool silu, int64_t lo, int64_t hi,
                          Divisor gammaDiv, int gammaOff, float mu, float rs, float mg, float mgx) {
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        float xh = (elem(x, sh, i, gammaDiv) - mu) * rs;
        float g = grad_xhat(to_f(dy[i]), xh, gamma, beta, gammaOff + quot(i, gammaDiv), silu);
        dx[i] = from_f<T>(rs * (g - mg - xh * mgx));
    }
}

template <typename T>
__device__ void norm_bwd(T *dx, const T *x, const T *sh, const T *dy, const T *gamma, const T *beta, bool silu, int64_t n,
                         Divisor gammaDiv, int gammaOff, float mu, float rs) {
    float sg, sgx;
    bwd_sums(x, sh, dy, gamma, beta, silu, 0, n, gammaDiv, gammaOff, mu, rs, &sg, &sgx);
    bwd_apply(dx, x, sh, dy, gamma, beta, silu, 0, n, gammaDiv, gammaOff, mu, rs, sg / n, sgx / n);
}

template <typename T>
__device__ void groupnorm_bwd_impl(T *dx, const T *x, const T *shift, const T *dy, const float *mean, const float *rstd, const T *gamma,
                                   const T *beta, int C, Divisor HW, int G, int silu) {
    int ng = blockIdx.x, cpg = C / G;
    int64_t size = cpg * HW.d, off = ng * size;
    norm_bwd(dx + off, x + off, run_shift(shift, ng, cpg), dy + off, gamma, beta, silu, size, HW, (ng % G) * cpg, mean[ng], rstd[ng]);
}
KERNEL3(groupnorm_bwd,
        (void *dx, const void *x, const void *shift, const void *dy, const float *mean, const float *rstd, const void *gamma, const void *beta,
         int C, Divisor HW, int G, int silu),
        ((T *)dx, (const T *)x, (const T *)shift, (const T *)dy, mean, rstd, (const T *)gamma, (const T *)beta, C, HW, G, silu))

// The split group norm: grid (S, N·G), block s of run ng takes the slice
// [slice_start(s), slice_start(s+1)) of the run's size values, about size/S each.
namespace {

// Slices start on multiples of 8 elements (the last ends at size), so that
// each starts on a Vec when the run does.
__device__ __forceinline__ int64_t slice_start(int64_t size, int s, int S) { return s >= S ? size : size * s / S / 8 * 8; }

// merged_moments merges the S slices' (mean, M2) of a run (Chan et al.'s
// pairwise update: exact in real arithmetic, and no cancellation as
// Σx² - n·mean² would have) into the run's mean and 1/sqrt(var+eps); thread
// 0 merges, every thread gets the result.
__device__ void merged_moments(const float2 *part, int S, int64_t size, float eps, float *mean, float *rstd) {
    __shared__ float stats[2];
    if (threadIdx.x == 0) {
        float n = 0.f, mu = 0.f, m2 = 0.f;
        for (int s = 0; s < S; s++) {
            float nb = (float)(slice_start(size, s + 1, S) - slice_start(size, s, S)), nn = n + nb;
            float2 p = part[s];
            float d = p.x - mu;
            mu += d * (nb / nn);
            m2 += p.y + d * d * (n * nb / nn);
            n = nn;
        }
        stats[0] = mu;
        stats[1] = rsqrtf(m2 / (float)size + eps);
    }
    __syncthreads();
    *mean = stats[0];
    *rstd = stats[1];
}

// summed_pairs sums the S slices' float2 partials; every thread gets the sums.
__device__ void summed_pairs(const float2 *part, int S, float *a, float *b) {
    __shared__ float sums[2];
    if (threadIdx.x == 0) {
        float x = 0.f, y = 0.f;
        for (int s = 0; s < S; s++) { x += part[s].x; y += part[s].y; }
        sums[0] = x;
        sums[1] = y;
    }
    __syncthreads();
    *a = sums[0];
    *b = sums[1];
}

} // namespace

// groupnorm_partial: each slice's mean and M2 (its second pass reads the
// slice back from L2) into part [N·G, S].
template <typename T> __device__ void groupnorm_partial_impl(float2 *part, const T *x, const T *shift, int cpg, Divisor HW) {
    int s = blockIdx.x, S = gridDim.x;
    int64_t ng = blockIdx.y, size = cpg * HW.d, lo = slice_start(size, s, S), hi = slice_start(size, s + 1, S);
    float mu, m2;
    mean_m2(x + ng * size, run_shift(shift, ng, cpg), lo, hi, HW, &mu, &m2);
    if (threadIdx.x == 0) part[ng * S + s] = make_float2(mu, m2);
}
KERNEL3(groupnorm_partial, (float2 *part, const void *x, const void *shift, int cpg, Divisor HW), (part, (const T *)x, (const T *)shift, cpg, HW))

// groupnorm_apply: merges the run's slices, normalizes this block's slice;
// slice 0 writes the run's statistics.
template <typename T>
__device__ void groupnorm_apply_impl(T *y, float *mean, float *rstd, const float2 *part, const T *x, const T *shift, const T *gamma,
                                     const T *beta, int C, Divisor HW, int G, float eps, int silu) {
    int s = blockIdx.x, S = gridDim.x, cpg = C / G;
    int64_t ng = blockIdx.y, size = cpg * HW.d, lo = slice_start(size, s, S), hi = slice_start(size, s + 1, S);
    int g = (int)(ng % G);
    float mu, rs;
    merged_moments(part + ng * S, S, size, eps, &mu, &rs);
    if (s == 0 && threadIdx.x == 0) { mean[ng] = mu; rstd[ng] = rs; }
    groupnorm_write(y + ng * size, x + ng * size, run_shift(shift, ng, cpg), gamma, beta, lo, hi, HW, g * cpg, mu, rs, silu);
}
KERNEL3(groupnorm_apply,
        (void *y, float *mean, float *rstd, const float2 *part, const void *x, const void *shift, const void *gamma, const void *beta, int C,
         Divisor HW, int G, float eps, int silu),
        ((T *)y, mean, rstd, part, (const T *)x, (const T *)shift, (const T *)gamma, (const T *)beta, C, HW, G, eps, silu))

// groupnorm_bwd_partial: each slice's sums of g and g·x̂ into part [N·G, S].
template <typename T>
__device__ void groupnorm_bwd_partial_impl(float2 *part, const T *x, const T *shift, const T *dy, const float *mean, const float *rstd,
                                           const T *gamma, const T *beta, int C, Divisor HW, int G, int silu) {
    int s = blockIdx.x, S = gridDim.x, cpg = C / G;
    int64_t ng = blockIdx.y, size = cpg * HW.d, off = ng * size;
    float sg, sgx;
    bwd_sums(x + off, run_shift(shift, ng, cpg), dy + off, gamma, beta, silu, slice_start(size, s, S), slice_start(size, s + 1, S), HW, (int)(ng % G) * cpg, mean[ng],
             rstd[ng], &sg, &sgx);
    if (threadIdx.x == 0) part[ng * S + s] = make_float2(sg, sgx);
}
KERNEL3(groupnorm_bwd_partial,
        (float2 *part, const void *x, const void *shift, const void *dy, const float *mean, const float *rstd, const void *gamma,
         const void *beta, int C, Divisor HW, int G, int silu),
        (part, (const T *)x, (const T *)shift, (const T *)dy, mean, rstd, (const T *)gamma, (const T *)beta, C, HW, G, silu))

// groupnorm_bwd_apply: the run's sums from its slices, then dx over this block's slice.
template <typename T>
__device__ void groupnorm_bwd_apply_impl(T *dx, const float2 *part, const T *x, const T *shift, const T *dy, const float *mean,
                                         const float *rstd, const T *gamma, const T *beta, int C, Divisor HW, int G, int silu) {
    int s = blockIdx.x, S = gridDim.x, cpg = C / G;
    int64_t ng = blockIdx.y, size = cpg * HW.d, off = ng * size;
    float sg, sgx;
    summed_pairs(part + ng * S, S, &sg, &sgx);
    bwd_apply(dx + off, x + off, run_shift(shift, ng, cpg), dy + off, gamma, beta, silu, slice_start(size, s, S), slice_start(size, s + 1, S), HW, (int)(ng % G) * cpg,
              mean[ng], rstd[ng], sg / (float)size, sgx / (float)size);
}
KERNEL3(groupnorm_bwd_apply,
        (void *dx, const float2 *part, const void *x, const void *shift, const void *dy, const float *mean, const float *rstd, const void *gamma,
         const void *beta, int C, Divisor HW, int G, int silu),
        ((T *)dx, part, (const T *)x, (const T *)shift, (const T *)dy, mean, rstd, (const T *)gamma, (const T *)beta, C, HW, G, silu))

template <typename T>
__device__ void layernorm_impl(T *y, float *mean, float *rstd, const T *x, const T *gamma, const T *beta, int64_t cols, float eps) {
    int64_t r = blockIdx.x;
    const T *row = x + r * cols;
    float mu, rs;
    moments(row, (const T *)nullptr, cols, Divisor{1, 1, 0}, eps, &mu, &rs);
    if (threadIdx.x == 0) { mean[r] = mu; rstd[r] = rs; }
    T *out = y + r * cols;
    constexpr int N = VEC(T);
    if (cols % N == 0 && vec_aligned<T, N>(row) && vec_aligned<T, N>(out) && (!gamma || vec_aligned<T, N>(gamma)) &&
        (!beta || vec_aligned<T, N>(beta))) {
        for (int64_t k = (int64_t)threadIdx.x * N; k < cols; k += (int64_t)blockDim.x * N) {
            Vec<T, N> v = load_vec<N>(row + k), g, b;
            if (gamma) g = load_vec<N>(gamma + k);
            if (beta) b = load_vec<N>(beta + k);
#pragma unroll
            for (int j = 0; j < N; j++) {
                float t = (to_f(v.v[j]) - mu) * rs;
                if (gamma) t *= to_f(g.v[j]);
                if (beta) t += to_f(b.v[j]);
                v.v[j] = from_f<T>(t);
            }
            store_vec<N>(out + k, v);
        }
        return;
    }
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
        float v = (to_f(row[i]) - mu) * rs;
        if (gamma) v *= to_f(gamma[i]);
        if (beta) v += to_f(beta[i]);
        out[i] = from_f<T>(v);
    }
}
KERNEL3(layernorm, (void *y, float *mean, float *rstd, const void *x, const void *gamma, const void *beta, int64_t cols, float eps),
        ((T *)y, mean, rstd, (const T *)x, (const T *)gamma, (const T *)beta, cols, eps))

template <typename T>
__device__ void layernorm_bwd_impl(T *dx, const T *x, const T *dy, const float *mean, const float *rstd, const T *gamma, int64_t cols) {
    int64_t r = blockIdx.x, off = r * cols;
    norm_bwd(dx + off, x + off, (const T *)nullptr, dy + off, gamma, (const T *)nullptr, false, cols, Divisor{1, 1, 0}, 0, mean[r], rstd[r]);
}
KERNEL3(layernorm_bwd, (void *dx, const void *x, const void *dy, const float *mean, const float *rstd, const void *gamma, int64_t cols),
        ((T *)dx, (const T *)x, (const T *)dy, mean, rstd, (const T *)gamma, cols))
