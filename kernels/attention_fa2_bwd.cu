// The backward of kernels/attention_fa2.cu in the manner of FlashAttention-2
// (Dao, 2023), on mma.sync.m16n8k16 (kernels/mma.cuh), for f16/bf16 heads
// 40, 64, 80 and 160 wide: no N×M probabilities in memory, P recomputed
// tile by tile from the forward's log-sum-exp, float accumulation.
//
//   P = exp(scale·q·kᵀ - lse)        dV = Pᵀ·dO
//   dP = dO·vᵀ, Di = rowsum(dO∘O)     dS = P∘(dP - Di)
//   dQ = scale·dS·k                   dK = scale·dSᵀ·q
//
// Three kernels: attention_bwd_di (Di, one warp per row), then two passes of
// one template. The key pass (one block per 64 keys, looping over query
// tiles) forms Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ and accumulates dK and dV in
// registers. The query pass (one block per 64 queries, looping over key
// tiles) forms S and dP again and accumulates dQ in registers. FA2 instead
// adds each key block's share of dQ into a float32 buffer by atomicAdd; the
// second pass costs two more products (7 instead of 5, 40% more tensor-core
// work) but needs no float32 dQ buffer and no conversion pass, no atomics
// (whose order changes the rounding from run to run: the guidance pass is
// reproducible), and both passes have the forward's shape: rows held by the
// warps, column tiles streamed by cp.async with double buffering, the
// products' C fragments turned into the next product's A fragments in
// registers.
//
// Pass geometry (rows R, columns C): the key pass has R = keys with R1 = K,
// R2 = V and C = queries with C1 = Q, C2 = dO, per-column statistics; the
// query pass has R = queries with R1 = Q, R2 = dO and C = keys with C1 = K,
// C2 = V, per-row statistics. Both form S = R1·C1ᵀ, P from S and lse,
// dP = R2·C2ᵀ, dS = P∘(dP - Di); the key pass accumulates dS·C1 (dK) and
// P·C2 (dV), the query pass dS·C1 (dQ). The row tiles stay in shared memory
// and their A fragments are reloaded per tile by ldmatrix (holding both
// in registers would take 80 of them per lane for 160-wide heads, on top of
// two 80-register accumulators).
//
// Layout: as in attention_fa2.cu, row n of head h of batch entry b at
// x + (b·rows + n)·stride + h·D; lse and Di [B·H, N] in float32, entry-major.
//
// CPU reference: cpu/attention.go (attentionBackward).
#include "common.cuh"
#include "mma.cuh"

#define FA2B_BR 64 // rows per block (16 per warp)
#define FA2B_WARPS 4

// FA2B fixes a head width's shapes, as FA2 does for the forward: KD the
// padded reduction width, BC columns per tile (32 for the widest head: two
// 80-register accumulators), LD the shared row pitch.
template <int D> struct FA2B {
    static constexpr int KD = (D + 15) / 16 * 16, BC = D > 128 ? 32 : 64, LD = KD + 8, ND = D / 8;
};

// attention_bwd_di writes Di[e, n] = Σ_d dO[e, n, d]·O[e, n, d] in float,
// one warp per row, for the passes to read. Grid (ceil(N/4), B·H).
template <typename T> __device__ void attention_bwd_di_impl(float *di, const T *o, const T *dout, int N, int H, int D, int stride) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int n = blockIdx.x * 4 + warp, e = blockIdx.y;
    if (n >= N) return;
    int64_t off = ((int64_t)(e / H) * N + n) * stride + (int64_t)(e % H) * D;
    float s = 0.f;
    for (int d = lane; d < D; d += 32) s += to_f(o[off + d]) * to_f(dout[off + d]);
    for (int w = 16; w > 0; w >>= 1) s += __shfl_xor_sync(0xffffffff, s, w);
    if (lane == 0) di[(int64_t)e * N + n] = s;
}
KERNEL3(attention_bwd_di, (float *di, const void *o, const void *dout, int N, int H, int D, int stride),
        (di, (const T *)o, (const T *)dout, N, H, D, stride))

// fa2b_load stages rows [r0, r0+rows) of one head into s[rows][LD] (mma.cuh's cp_async_rows).
template <typename T, int D, int LD> __device__ __forceinline__ void fa2b_load(T *s, const T *g, int64_t stride, int r0, int rows, int count) {
    cp_async_rows<FA2B_WARPS * 32, T, D, LD>(s, g, stride, r0, rows, count);
}

// fa2b_abt sets s = a·cᵀ for the warp's 16 rows of a (shared,
// [16][LD]) against the BC rows of c (shared, [BC][LD]) over KD columns.
template <typename T, int KD, int BC, int LD> __device__ __forceinline__ void fa2b_abt(float (&s)[BC / 8][4], const T *a, const T *c, int lane) {
#pragma unroll
    for (int i = 0; i < BC / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KD / 16; kk++) {
        uint32_t af[4];
        ldmatrix_x4(af, a + (lane & 15) * LD + kk * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int n2 = 0; n2 < BC / 16; n2++) {
            uint32_t kb[4];
            ldmatrix_x4(kb, c + (n2 * 16 + (lane >> 4) * 8 + (lane & 7)) * LD + kk * 16 + ((lane >> 3) & 1) * 8);
            uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
            mma_m16n8k16<T>(s[2 * n2], af, b0, s[2 * n2]);
            mma_m16n8k16<T>(s[2 * n2 + 1], af, b1, s[2 * n2 + 1]);
        }
    }
}

// fa2b_pc accumulates acc += p·c: p the warp's 16×BC C fragments (rounded
// to T, they are the A fragments), c shared [BC][LD] over its D columns.
template <typename T, int D, int BC, int LD> __device__ __forceinline__ void fa2b_pc(float (&acc)[D / 8][4], const float (&p)[BC / 8][4], const T *c, int lane) {
    constexpr int ND = D / 8;
#pragma unroll
    for (int k2 = 0; k2 < BC / 16; k2++) {
        uint32_t pa[4] = {pack_h2<T>(p[2 * k2][0], p[2 * k2][1]), pack_h2<T>(p[2 * k2][2], p[2 * k2][3]),
                          pack_h2<T>(p[2 * k2 + 1][0], p[2 * k2 + 1][1]), pack_h2<T>(p[2 * k2 + 1][2], p[2 * k2 + 1][3])};
        const T *crow = c + (k2 * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD;
#pragma unroll
        for (int d2 = 0; d2 < ND / 2; d2++) {
            uint32_t vb[4];
            ldmatrix_x4_trans(vb, crow + d2 * 16 + (lane >> 4) * 8);
            uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
            mma_m16n8k16<T>(acc[2 * d2], pa, b0, acc[2 * d2]);
            mma_m16n8k16<T>(acc[2 * d2 + 1], pa, b1, acc[2 * d2 + 1]);
        }
        if (ND % 2) { // D = 40: the last 8-column block by an x2
            uint32_t vb[2];
            ldmatrix_x2_trans(vb, crow + (ND - 1) * 8);
            mma_m16n8k16<T>(acc[ND - 1], pa, vb, acc[ND - 1]);
        }
    }
}

// fa2b_store writes scale·acc for the warp's rows g and g+8 (row0 the
// warp's first), two columns per lane per 8-column block.
template <typename T, int D> __device__ __forceinline__ void fa2b_store(T *x, int64_t stride, const float (&acc)[D / 8][4], int row0, int rows, float scale, int lane) {
    int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int row = row0 + g + 8 * r;
        if (row >= rows) continue;
        T *dst = x + (int64_t)row * stride + 2 * t;
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            uint32_t pair = pack_h2<T>(acc[i][2 * r] * scale, acc[i][2 * r + 1] * scale);
            memcpy((void *)(dst + i * 8), &pair, 4);
        }
    }
}

// attention_fa2_bwd_impl is one pass (KEYS: the key pass, else the query
// pass; see the top of the file). r1, r2 and c1, c2 are the pass's row and
// column operands (already offset to the batch entry and head), R and C
// their counts; x1 (and x2 in the key pass) the outputs. lse2 is the
// log-sum-exp in log2 units (lse·log2 e, the launcher's scaleLog2 folds
// log2 e into the scale as the forward's does).
template <typename T, int D, bool KEYS>
__device__ void attention_fa2_bwd_impl(T *x1, T *x2, const T *r1, const T *r2, const T *c1, const T *c2, const float *lse, const float *di, int R,
                                       int C, int stride, float scaleLog2, float scale) {
    typedef FA2B<D> S;
    constexpr int KD = S::KD, BC = S::BC, LD = S::LD, ND = S::ND, BR = FA2B_BR;
    constexpr float LOG2E = 1.4426950408889634f;
    DYNAMIC_SHARED(char, fa2b_smem);
    T *rs = (T *)fa2b_smem;                   // R1 [BR][LD], then R2
    auto cst = [&](int st) { return rs + (2 * BR + 2 * BC * st) * LD; }; // C1 [BC][LD], then C2, per stage
    float *stat = (float *)(rs + (2 * BR + 4 * BC) * LD); // key pass: [stage][lse2 BC, Di BC]
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int r0 = blockIdx.x * BR;

    constexpr int PAD = KD - D;
    if (PAD > 0) {
        for (int i = threadIdx.x; i < (2 * BR + 4 * BC) * PAD; i += FA2B_WARPS * 32) {
            int r = i / (PAD > 0 ? PAD : 1), c = D + i % (PAD > 0 ? PAD : 1);
            rs[r * LD + c] = from_f<T>(0.f);
        }
    }
    // Column statistics of the tile at j0 into stage st: past the last
    // column lse = +inf makes P = 0 there (and Di = 0 keeps dS = 0).
    auto loadStats = [&](int st, int j0) {
        for (int c = threadIdx.x; c < BC; c += FA2B_WARPS * 32) {
            bool in = j0 + c < C;
            stat[st * 2 * BC + c] = in ? lse[j0 + c] * LOG2E : INFINITY;
            stat[st * 2 * BC + BC + c] = in ? di[j0 + c] : 0.f;
        }
    };
    fa2b_load<T, D, LD>(rs, r1, stride, r0, BR, R);
    fa2b_load<T, D, LD>(rs + BR * LD, r2, stride, r0, BR, R);
    fa2b_load<T, D, LD>(cst(0), c1, stride, 0, BC, C);
    fa2b_load<T, D, LD>(cst(0) + BC * LD, c2, stride, 0, BC, C);
    cp_async_commit();
    if (KEYS) loadStats(0, 0);

    // Row statistics (query pass): rows g and g+8 of the warp.
    float rl[2] = {0.f, 0.f}, rd[2] = {0.f, 0.f};
    if (!KEYS) {
#pragma unroll
        for (int r = 0; r < 2; r++) {
            int row = r0 + warp * 16 + g + 8 * r;
            if (row < R) rl[r] = lse[row] * LOG2E, rd[r] = di[row];
        }
    }

    float acc1[ND][4], acc2[ND][4]; // acc2: the key pass's only (dead code, no registers, in the query pass)
#pragma unroll
    for (int i = 0; i < ND; i++) {
        acc1[i][0] = acc1[i][1] = acc1[i][2] = acc1[i][3] = 0.f;
        acc2[i][0] = acc2[i][1] = acc2[i][2] = acc2[i][3] = 0.f;
    }

    const T *a1 = rs + warp * 16 * LD, *a2 = rs + (BR + warp * 16) * LD;
    int tiles = (C + BC - 1) / BC;
    for (int tile = 0; tile < tiles; tile++) {
        int st = tile & 1, j0 = tile * BC;
        if (tile + 1 < tiles) {
            fa2b_load<T, D, LD>(cst(st ^ 1), c1, stride, j0 + BC, BC, C);
            fa2b_load<T, D, LD>(cst(st ^ 1) + BC * LD, c2, stride, j0 + BC, BC, C);
            if (KEYS) loadStats(st ^ 1, j0 + BC);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const T *t1 = cst(st), *t2 = cst(st) + BC * LD;

        float p[BC / 8][4], ds[BC / 8][4];
        fa2b_abt<T, KD, BC, LD>(p, a1, t1, lane);  // S = R1·C1ᵀ
        fa2b_abt<T, KD, BC, LD>(ds, a2, t2, lane); // dP = R2·C2ᵀ
        const float *sl = stat + st * 2 * BC, *sd = sl + BC;
#pragma unroll
        for (int i = 0; i < BC / 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int col = i * 8 + 2 * t + (e & 1);
                float l, d;
                if (KEYS) {
                    l = sl[col], d = sd[col];
                } else {
                    l = j0 + col < C ? rl[e >> 1] : INFINITY; // keys past the end: P = 0
                    d = rd[e >> 1];
                }
                float pe = exp2f(fmaf(p[i][e], scaleLog2, -l));
                p[i][e] = pe;
                ds[i][e] = pe * (ds[i][e] - d);
            }
        fa2b_pc<T, D, BC, LD>(acc1, ds, t1, lane); // dS·C1: dK or dQ
        if (KEYS) fa2b_pc<T, D, BC, LD>(acc2, p, t2, lane); // P·C2: dV
        __syncthreads();
    }
    fa2b_store<T, D>(x1, stride, acc1, r0 + warp * 16, R, scale, lane);
    if (KEYS) fa2b_store<T, D>(x2, stride, acc2, r0 + warp * 16, R, 1.f, lane);
}

// The two passes of a head width: each grid row is one (batch entry, head).
// The key pass's grid is (ceil(M/64), B·H), the query pass's (ceil(N/64), B·H).
template <typename T, int D>
__device__ void attention_fa2_bwd_kv(T *dk, T *dv, const T *q, const T *k, const T *v, const T *dout, const float *lse, const float *di, int N,
                                     int M, int H, int stride, float scaleLog2, float scale) {
    int e = blockIdx.y, b = e / H, h = e % H;
    int64_t qo = (int64_t)b * N * stride + (int64_t)h * D, ko = (int64_t)b * M * stride + (int64_t)h * D;
    attention_fa2_bwd_impl<T, D, true>(dk + ko, dv + ko, k + ko, v + ko, q + qo, dout + qo, lse + (int64_t)e * N, di + (int64_t)e * N, M, N, stride,
                                       scaleLog2, scale);
}
template <typename T, int D>
__device__ void attention_fa2_bwd_q(T *dq, const T *q, const T *k, const T *v, const T *dout, const float *lse, const float *di, int N, int M, int H,
                                    int stride, float scaleLog2, float scale) {
    int e = blockIdx.y, b = e / H, h = e % H;
    int64_t qo = (int64_t)b * N * stride + (int64_t)h * D, ko = (int64_t)b * M * stride + (int64_t)h * D;
    attention_fa2_bwd_impl<T, D, false>(dq + qo, nullptr, q + qo, dout + qo, k + ko, v + ko, lse + (int64_t)e * N,
                                        di + (int64_t)e * N, N, M, stride, scaleLog2, scale);
}

#define FA2B_KERNELS(d, ty, T)                                                                                                                    \
    extern "C" __global__ void __launch_bounds__(FA2B_WARPS * 32)                                                                                 \
        attention_fa2_bwd_kv_d##d##_##ty(void *dk, void *dv, const void *q, const void *k, const void *v, const void *dout, const float *lse,    \
                                         const float *di, int N, int M, int H, int stride, float scaleLog2, float scale) {                        \
        attention_fa2_bwd_kv<T, d>((T *)dk, (T *)dv, (const T *)q, (const T *)k, (const T *)v, (const T *)dout, lse, di, N, M, H, stride,        \
                                   scaleLog2, scale);                                                                                             \
    }                                                                                                                                             \
    extern "C" __global__ void __launch_bounds__(FA2B_WARPS * 32)                                                                                 \
        attention_fa2_bwd_q_d##d##_##ty(void *dq, const void *q, const void *k, const void *v, const void *dout, const float *lse,               \
                                        const float *di, int N, int M, int H, int stride, float scaleLog2, float scale) {                         \
        attention_fa2_bwd_q<T, d>((T *)dq, (const T *)q, (const T *)k, (const T *)v, (const T *)dout, lse, di, N, M, H, stride, scaleLog2,       \
                                  scale);                                                                                                         \
    }                                                                                                                                             \
    EMU_REGISTER(attention_fa2_bwd_kv_d##d##_##ty) EMU_REGISTER(attention_fa2_bwd_q_d##d##_##ty)
#define FA2B_WIDTH(d) FA2B_KERNELS(d, f16, f16) FA2B_KERNELS(d, bf16, bf16)
FA2B_WIDTH(40)
FA2B_WIDTH(64)
FA2B_WIDTH(80)
FA2B_WIDTH(160)
