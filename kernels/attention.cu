// Fused attention, flash style: out = softmax(scale·q·kᵀ)·v without the N×M
// scores in memory, for self-attention when nobody reads the probabilities.
// Layout: q [B, N, D], k and v [B, M, D], D <= 256. Grid (ceil(N/4), B), 4
// warps per block, one query row per warp. Keys and values come through
// shared memory in tiles of 32; lane j scores key j of the tile, the running
// maximum and sum are updated (online softmax), the tile's probabilities are
// shared through shared memory, and each lane accumulates output channels
// lane, lane+32, ... When lse is not null (the forward of the backward) it
// gets each row's log-sum-exp, [B, N]. CPU reference: cpu/attention.go.
#include "common.cuh"

#define ATT_WARPS 4
#define ATT_TILE 32
#define ATT_MAXD 256

template <typename T> __device__ void attention_impl(T *out, float *lse, const T *q, const T *k, const T *v, int N, int M, int D, float scale) {
    DYNAMIC_SHARED(float, sm);
    int pitch = D + 1; // padding avoids bank conflicts when lane j reads row j
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *ks = sm, *vs = sm + ATT_TILE * pitch, *qs = vs + ATT_TILE * pitch;
    float *ps = qs + ATT_WARPS * D + warp * ATT_TILE; // this warp's probabilities of the tile
    int64_t b = blockIdx.y;
    int row = blockIdx.x * ATT_WARPS + warp;
    bool active = row < N;
    float *qrow = qs + warp * D;
    if (active)
        for (int d = lane; d < D; d += 32) qrow[d] = to_f(q[(b * N + row) * D + d]) * scale;
    float acc[ATT_MAXD / 32];
    for (int t = 0; t < ATT_MAXD / 32; t++) acc[t] = 0.f;
    float mx = -INFINITY, sum = 0.f;
    for (int j0 = 0; j0 < M; j0 += ATT_TILE) {
        __syncthreads();
        for (int i = threadIdx.x; i < ATT_TILE * D; i += blockDim.x) {
            int j = i / D, d = i % D;
            bool in = j0 + j < M;
            ks[j * pitch + d] = in ? to_f(k[(b * M + j0 + j) * D + d]) : 0.f;
            vs[j * pitch + d] = in ? to_f(v[(b * M + j0 + j) * D + d]) : 0.f;
        }
        __syncthreads();
        if (!active) continue;
        float s = -INFINITY;
        if (j0 + lane < M) {
            s = 0.f;
            for (int d = 0; d < D; d++) s += qrow[d] * ks[lane * pitch + d];
        }
        float tmax = s;
        for (int o = 16; o > 0; o >>= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffff, tmax, o));
        float nmx = fmaxf(mx, tmax);
        float p = j0 + lane < M ? expf(s - nmx) : 0.f;
        float psum = p;
        for (int o = 16; o > 0; o >>= 1) psum += __shfl_xor_sync(0xffffffff, psum, o);
        float corr = expf(mx - nmx); // 0 on the first tile (mx = -inf)
        sum = sum * corr + psum;
        mx = nmx;
        // The tile's probabilities go through shared memory (read as
        // broadcasts), not 32 shuffles per group of channels; the
        // __syncthreads at the top of the loop guards their reuse.
        ps[lane] = p;
        __syncwarp();
        // Unrolled with a guard rather than looping while t·32 + lane < D: a
        // run-time index would put acc in local memory.
#pragma unroll
        for (int t = 0; t < ATT_MAXD / 32; t++) {
            int d = t * 32 + lane;
            if (d >= D) break;
            float a = acc[t] * corr;
            for (int j = 0; j < ATT_TILE; j++) a += ps[j] * vs[j * pitch + d];
            acc[t] = a;
        }
    }
    if (active) {
#pragma unroll
        for (int t = 0; t < ATT_MAXD / 32; t++)
            if (t * 32 + lane < D) out[(b * N + row) * D + t * 32 + lane] = from_f<T>(acc[t] / sum);
        if (lse && lane == 0) lse[b * N + row] = mx + logf(sum);
    }
}
KERNEL3(attention, (void *out, float *lse, const void *q, const void *k, const void *v, int N, int M, int D, float scale),
        ((T *)out, lse, (const T *)q, (const T *)k, (const T *)v, N, M, D, scale))
