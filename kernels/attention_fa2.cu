// Fused attention on tensor cores in the manner of FlashAttention-2 (Dao,
// 2023), for f16/bf16 heads 40, 64, 80 and 160 wide (SD 1.x and 2.x):
// out = softmax(scale·q·kᵀ)·v with float accumulation and no N×M scores in
// memory, on mma.sync.m16n8k16 (kernels/mma.cuh).
//
// Layout: the heads interleave in each row, as the projections write them:
// row n of head h of batch entry b starts at q + (b·N + n)·qStride + h·D
// (likewise k and v over M rows, out over N rows), so a [B, N, H·D]
// projection output (stride H·D) or one fused QKV output [B, N, 3·H·D]
// (stride 3·H·D, k and v H·D and 2·H·D further on) is read with no permute,
// and out is [B, N, H·D]. Strides and bases must keep rows 16-byte aligned
// (D and the strides multiples of 8; the launcher checks).
//
// Grid (ceil(N/64), B·H), 4 warps, 16 query rows per warp. The block's 64
// query rows and tiles of BN keys and values come through shared memory by
// cp.async, the next tile's copies in flight while the warps compute on the
// current one (double buffering). Each warp keeps its Q rows as A fragments
// (ldmatrix) for the whole pass, forms S = Q·Kᵀ for a tile in registers (K
// by ldmatrix: a key row is a column of Kᵀ, which is the B operand's
// layout), updates the row maxima and sums (the four lanes of a quad share a
// row: two shuffles), rescales its O accumulators row by row in registers,
// and turns the S accumulators into the A operand of P·V without leaving
// registers (the C layout of two 8-key blocks is the A layout of 16 keys);
// V's B fragments come by ldmatrix.trans. The exponent is exp2 with log2(e)
// folded into the scale (the launcher passes scale·log2 e).
//
// Only the QKᵀ reduction over the head needs 16 columns per step: Q and K
// are zero-padded to KD = D rounded up to 16 in shared memory (D = 40 → 48);
// P·V's output blocks are 8 wide, so O and V use exactly D columns.
//
// Hopper: nvcc 11.8 cannot emit sm_90a's wgmma. wgmma.mma_async would let a
// warpgroup (4 warps) multiply 64×N×16 tiles with B (and optionally A) read
// straight from shared memory through matrix descriptors — no ldmatrix, no
// register copies of K and V — asynchronously, so the softmax of one tile
// overlaps the products of the next (FlashAttention-3's ping-pong), and TMA
// (cp.async.bulk.tensor) would replace the per-thread cp.async copies. On
// sm_90 mma.sync runs at about half of wgmma's peak.
//
// CPU reference: cpu/attention.go.
#include "common.cuh"
#include "mma.cuh"

#define FA2_BM 64 // query rows per block (16 per warp)
#define FA2_WARPS 4

// FA2 fixes a head width's shapes: KD the padded reduction width of QKᵀ, BN
// keys per tile (32 for the widest head, whose O already takes 80 registers
// per lane and whose tiles would not fit sm_86's 99 KiB twice), LD the
// shared-memory row pitch (8 elements of padding: the 8 rows an ldmatrix
// reads then fall in different banks).
template <int D> struct FA2 {
    static constexpr int KD = (D + 15) / 16 * 16, BN = D > 128 ? 32 : 64, LD = KD + 8, ND = D / 8;
    static constexpr int SHARED = (FA2_BM + 4 * BN) * LD; // elements: Q, then two stages of K and V
};

// load_rows stages rows [r0, r0+rows) of one head into s[rows][LD] (mma.cuh's cp_async_rows).
template <typename T, int D, int LD> __device__ __forceinline__ void load_rows(T *s, const T *g, int64_t stride, int r0, int rows, int count) {
    cp_async_rows<FA2_WARPS * 32, T, D, LD>(s, g, stride, r0, rows, count);
}

template <typename T, int D>
__device__ void attention_fa2_impl(T *out, float *lse, const T *q, const T *k, const T *v, int N, int M, int H, int qStride, int kStride,
                                   int vStride, int oStride, float scaleLog2) {
    typedef FA2<D> S;
    constexpr int KD = S::KD, BN = S::BN, LD = S::LD, ND = S::ND;
    DYNAMIC_SHARED(char, fa2_smem); // one declaration for both element types
    T *qs = (T *)fa2_smem;
    // Stage st: keys at kst(st), values BN rows further (computed, not an
    // array of pointers: a runtime index into one would live in local memory).
    auto kst = [&](int st) { return qs + (FA2_BM + 2 * BN * st) * LD; };
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int b = blockIdx.y / H, h = blockIdx.y % H, m0 = blockIdx.x * FA2_BM;
    q += (int64_t)b * N * qStride + (int64_t)h * D;
    k += (int64_t)b * M * kStride + (int64_t)h * D;
    v += (int64_t)b * M * vStride + (int64_t)h * D;

    // Q and K columns D..KD stay zero for the whole pass (the copies never reach them).
    constexpr int PAD = KD - D;
    if (PAD > 0) {
        for (int i = threadIdx.x; i < (FA2_BM + 4 * BN) * PAD; i += FA2_WARPS * 32) {
            int r = i / (PAD > 0 ? PAD : 1), c = D + i % (PAD > 0 ? PAD : 1);
            qs[r * LD + c] = from_f<T>(0.f);
        }
    }
    load_rows<T, D, LD>(qs, q, qStride, m0, FA2_BM, N);
    load_rows<T, D, LD>(kst(0), k, kStride, 0, BN, M);
    load_rows<T, D, LD>(kst(0) + BN * LD, v, vStride, 0, BN, M);
    cp_async_commit();

    uint32_t qf[KD / 16][4];
    float o[ND][4];
#pragma unroll
    for (int i = 0; i < ND; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float mx[2] = {-INFINITY, -INFINITY}, sum[2] = {0.f, 0.f}; // rows g and g+8, in log2 units

    int tiles = (M + BN - 1) / BN;
    for (int tile = 0; tile < tiles; tile++) {
        int st = tile & 1, j0 = tile * BN;
        if (tile + 1 < tiles) {
            load_rows<T, D, LD>(kst(st ^ 1), k, kStride, j0 + BN, BN, M);
            load_rows<T, D, LD>(kst(st ^ 1) + BN * LD, v, vStride, j0 + BN, BN, M);
        }
        cp_async_commit();  // possibly empty: one group per tile keeps the count simple
        cp_async_wait<1>(); // this tile's group (and Q's) landed
        __syncthreads();    // and every thread's copies of it
        if (tile == 0) {
#pragma unroll
            for (int kk = 0; kk < KD / 16; kk++) ldmatrix_x4(qf[kk], qs + (warp * 16 + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
        }

        // S = Q·Kᵀ: an x4 ldmatrix gives the B fragments of two 8-key blocks.
        float s[BN / 8][4];
#pragma unroll
        for (int i = 0; i < BN / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
        const T *kt = kst(st);
#pragma unroll
        for (int kk = 0; kk < KD / 16; kk++) {
#pragma unroll
            for (int n2 = 0; n2 < BN / 16; n2++) {
                uint32_t kb[4];
                ldmatrix_x4(kb, kt + (n2 * 16 + (lane >> 4) * 8 + (lane & 7)) * LD + kk * 16 + ((lane >> 3) & 1) * 8);
                uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
                mma_m16n8k16<T>(s[2 * n2], qf[kk], b0, s[2 * n2]);
                mma_m16n8k16<T>(s[2 * n2 + 1], qf[kk], b1, s[2 * n2 + 1]);
            }
        }
        if (j0 + BN > M) { // keys past the end: their copies were zeros, their scores −inf
#pragma unroll
            for (int i = 0; i < BN / 8; i++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (j0 + i * 8 + 2 * t + (e & 1) >= M) s[i][e] = -INFINITY;
        }

        // Online softmax, rows g (elements 0, 1) and g+8 (2, 3). Every tile
        // holds a valid key, so the new maxima are finite.
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float tm = -INFINITY;
#pragma unroll
            for (int i = 0; i < BN / 8; i++) tm = fmaxf(tm, fmaxf(s[i][2 * r], s[i][2 * r + 1]));
            tm = fmaxf(tm, __shfl_xor_sync(0xffffffff, tm, 1));
            tm = fmaxf(tm, __shfl_xor_sync(0xffffffff, tm, 2));
            float mNew = fmaxf(mx[r], tm * scaleLog2);
            float corr = exp2f(mx[r] - mNew); // 0 on the first tile
            mx[r] = mNew;
            float ps = 0.f;
#pragma unroll
            for (int i = 0; i < BN / 8; i++) {
                s[i][2 * r] = exp2f(fmaf(s[i][2 * r], scaleLog2, -mNew));
                s[i][2 * r + 1] = exp2f(fmaf(s[i][2 * r + 1], scaleLog2, -mNew));
                ps += s[i][2 * r] + s[i][2 * r + 1];
            }
            sum[r] = sum[r] * corr + ps; // this lane's share; the quad's are added at the end
#pragma unroll
            for (int i = 0; i < ND; i++) o[i][2 * r] *= corr, o[i][2 * r + 1] *= corr;
        }

        // O += P·V: P's A fragments are the S accumulators, rounded to T.
        const T *vt = kst(st) + BN * LD;
#pragma unroll
        for (int k2 = 0; k2 < BN / 16; k2++) {
            uint32_t pa[4] = {pack_h2<T>(s[2 * k2][0], s[2 * k2][1]), pack_h2<T>(s[2 * k2][2], s[2 * k2][3]),
                              pack_h2<T>(s[2 * k2 + 1][0], s[2 * k2 + 1][1]), pack_h2<T>(s[2 * k2 + 1][2], s[2 * k2 + 1][3])};
            const T *vrow = vt + (k2 * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD;
#pragma unroll
            for (int d2 = 0; d2 < ND / 2; d2++) {
                uint32_t vb[4];
                ldmatrix_x4_trans(vb, vrow + d2 * 16 + (lane >> 4) * 8);
                uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
                mma_m16n8k16<T>(o[2 * d2], pa, b0, o[2 * d2]);
                mma_m16n8k16<T>(o[2 * d2 + 1], pa, b1, o[2 * d2 + 1]);
            }
            if (ND % 2) { // D = 40: an odd count of 8-column blocks, the last by an x2
                uint32_t vb[2];
                ldmatrix_x2_trans(vb, vrow + (ND - 1) * 8);
                mma_m16n8k16<T>(o[ND - 1], pa, vb, o[ND - 1]);
            }
        }
        __syncthreads(); // this stage fully read before the next iteration's copies refill it
    }

    // out = O / l: lanes t of a quad write 2 columns each of rows g and g+8;
    // lse [B·H, N] (the forward of the backward, when not null) gets the rows' log-sum-exp.
    out += (int64_t)b * N * oStride + (int64_t)h * D;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float l = sum[r];
        l += __shfl_xor_sync(0xffffffff, l, 1);
        l += __shfl_xor_sync(0xffffffff, l, 2);
        float inv = 1.f / l;
        int row = m0 + warp * 16 + g + 8 * r;
        if (row >= N) continue;
        // The backward's log-sum-exp (natural log): max and sum are in log2 units.
        if (lse && t == 0) lse[(int64_t)blockIdx.y * N + row] = (mx[r] + log2f(l)) * 0.6931471805599453f;
        T *dst = out + (int64_t)row * oStride + 2 * t;
#pragma unroll
        for (int i = 0; i < ND; i++) {
            uint32_t pair = pack_h2<T>(o[i][2 * r] * inv, o[i][2 * r + 1] * inv);
            memcpy((void *)(dst + i * 8), &pair, 4);
        }
    }
}

#define ATT_FA2(d)                                                                                                             \
    extern "C" __global__ void __launch_bounds__(FA2_WARPS * 32)                                                               \
        attention_fa2_d##d##_f16(void *out, float *lse, const void *q, const void *k, const void *v, int N, int M, int H,      \
                                 int qStride, int kStride, int vStride, int oStride, float scaleLog2) {                        \
        attention_fa2_impl<f16, d>((f16 *)out, lse, (const f16 *)q, (const f16 *)k, (const f16 *)v, N, M, H, qStride, kStride, \
                                   vStride, oStride, scaleLog2);                                                               \
    }                                                                                                                          \
    extern "C" __global__ void __launch_bounds__(FA2_WARPS * 32)                                                               \
        attention_fa2_d##d##_bf16(void *out, float *lse, const void *q, const void *k, const void *v, int N, int M, int H,     \
                                  int qStride, int kStride, int vStride, int oStride, float scaleLog2) {                       \
        attention_fa2_impl<bf16, d>((bf16 *)out, lse, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, N, M, H, qStride,     \
                                    kStride, vStride, oStride, scaleLog2);                                                     \
    }                                                                                                                          \
    EMU_REGISTER(attention_fa2_d##d##_f16) EMU_REGISTER(attention_fa2_d##d##_bf16)
ATT_FA2(40)
ATT_FA2(64)
ATT_FA2(80)
ATT_FA2(160)
