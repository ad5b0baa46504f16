// Fused attention on tensor cores, flash style, for f16/bf16 heads up to 128
// wide: out = softmax(scale·q·kᵀ)·v without the N×M scores in memory.
// Layout as attention.cu: q [B, N, D], k and v [B, M, D]. Grid (ceil(N/64), B),
// 4 warps per block, 16 query rows per warp; keys and values come through
// shared memory in tiles of 64, zero-padded to Dp = D rounded up to 16.
//
// Per tile a warp forms its 16×64 scores with WMMA (float accumulation),
// reads them back through its shared scratch (two lanes per row, 32 columns
// each), updates the row maxima and sums, writes P = exp(s − m) into the
// scratch in T, and accumulates O += P·V in accumulator fragments. WMMA hides
// which lane holds which element of a fragment, so O cannot be rescaled row
// by row in registers. Instead a row's reference maximum m moves only when a
// tile's maximum passes it by more than ATT_TC_SLACK (so P ≤ e^8 ≈ 2981, safe
// in f16 and bf16), and only then does the warp rescale O through shared
// memory; after the first tiles that is rare (the trick of FlashAttention-3).
//
// The CUDA-core kernel of attention.cu stays for float and for wider heads.
// CPU reference: cpu/attention.go.
#include "common.cuh"
#ifndef RF_EMU
#include <mma.h>
#endif
using namespace nvcuda;

#define ATT_TC_BM 64      // query rows per block (16 per warp)
#define ATT_TC_BN 64      // keys per tile
#define ATT_TC_SLACK 8.f  // how far a tile's maximum may pass m before O is rescaled
#define ATT_TC_SPITCH 68  // floats per row of a warp's score scratch (64 + 4: fewer bank conflicts, WMMA wants a multiple of 4)
#define ATT_TC_PPITCH 72  // elements per row of P in the same scratch (a multiple of 8 for WMMA)
#define ATT_TC_SCRATCH (16 * ATT_TC_SPITCH + 16) // floats per warp: scores (or P, or one 16×16 fragment), then 16 row factors

typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc_frag;

// stage_rows copies rows [r0, r0+64) of a [rows × D] matrix into s [64][ld],
// zero past the last row and in columns D..Dp. 16-byte vectors when every row
// starts 16-byte aligned (D a multiple of 8 and an aligned base: SD's 40, 64,
// 80 and 160 wide heads); element by element otherwise.
template <typename T> __device__ void stage_rows(T *s, int ld, const T *g, int r0, int rows, int D, int Dp) {
    if ((D & 7) == 0 && ((uintptr_t)g & 15) == 0) {
        int vpr = Dp / 8;
        for (int i = threadIdx.x; i < ATT_TC_BN * vpr; i += blockDim.x) {
            int r = i / vpr, c = (i % vpr) * 8;
            uint4 x = make_uint4(0, 0, 0, 0);
            if (r0 + r < rows && c < D) x = *(const uint4 *)(g + (int64_t)(r0 + r) * D + c);
            *(uint4 *)(s + r * ld + c) = x;
        }
        return;
    }
    for (int i = threadIdx.x; i < ATT_TC_BN * Dp; i += blockDim.x) {
        int r = i / Dp, c = i % Dp;
        s[r * ld + c] = r0 + r < rows && c < D ? g[(int64_t)(r0 + r) * D + c] : from_f<T>(0.f);
    }
}

// scale_rows multiplies the warp's accumulators row by row by rowf[0..15],
// through the scratch sc (16×16 floats at a time).
template <int NK> __device__ void scale_rows(acc_frag (&o)[NK], int nk, float *sc, const float *rowf, int lane) {
    for (int f = 0; f < NK; f++) {
        if (f >= nk) break;
        wmma::store_matrix_sync(sc, o[f], 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) sc[e] *= rowf[e >> 4];
        __syncwarp();
        wmma::load_matrix_sync(o[f], sc, 16, wmma::mem_row_major);
        __syncwarp();
    }
}

// NK: the widest head the instantiation takes, in 16-column slices (4: D ≤ 64, 8: D ≤ 128).
template <typename T, int NK> __device__ void attention_tc_impl(T *out, const T *q, const T *k, const T *v, int N, int M, int D, float scale) {
    DYNAMIC_SHARED(char, att_tc_smem);
    char *base = align32(att_tc_smem); // the launch adds 32 bytes of slack
    int nk = (D + 15) / 16, Dp = nk * 16, ld = Dp + 8;
    T *ks = (T *)base, *vs = ks + ATT_TC_BN * ld;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *sc = (float *)(vs + ATT_TC_BN * ld) + warp * ATT_TC_SCRATCH;
    float *rowf = sc + 16 * ATT_TC_SPITCH;
    T *pm = (T *)sc;
    int64_t b = blockIdx.y;
    int m0 = blockIdx.x * ATT_TC_BM;
    q += b * N * D;
    k += b * M * D;
    v += b * M * D;

    // This warp's 16 query rows, as Dp/16 fragments kept for the whole pass
    // (staged through the key tile's space).
    stage_rows(ks, ld, q, m0, N, D, Dp);
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[NK];
    for (int kk = 0; kk < NK; kk++)
        if (kk < nk) wmma::load_matrix_sync(qf[kk], ks + warp * 16 * ld + kk * 16, ld);
    acc_frag o[NK];
    for (int f = 0; f < NK; f++) wmma::fill_fragment(o[f], 0.f);

    // Lanes 2r and 2r+1 own row r, columns of parity h (interleaved: fewer bank conflicts).
    int r = lane >> 1, h = lane & 1;
    float m = -INFINITY, l = 0.f;
    for (int j0 = 0; j0 < M; j0 += ATT_TC_BN) {
        __syncthreads(); // the previous tile (or the query rows) fully read
        stage_rows(ks, ld, k, j0, M, D, Dp);
        stage_rows(vs, ld, v, j0, M, D, Dp);
        __syncthreads();

        // S = Q·Kᵀ: the key tile read column-major is Kᵀ. Slices of 16 keys
        // wholly past M are skipped here and in P·V (their scores are never
        // read, their P is 0): the second tile of 77 text tokens is mostly empty.
        int live = M - j0 >= ATT_TC_BN ? ATT_TC_BN / 16 : (M - j0 + 15) / 16;
        for (int n = 0; n < live; n++) {
            acc_frag s;
            wmma::fill_fragment(s, 0.f);
            for (int kk = 0; kk < NK; kk++) {
                if (kk >= nk) break;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
                wmma::load_matrix_sync(kf, ks + n * 16 * ld + kk * 16, ld);
                wmma::mma_sync(s, qf[kk], kf, s);
            }
            wmma::store_matrix_sync(sc + n * 16, s, ATT_TC_SPITCH, wmma::mem_row_major);
        }
        __syncwarp();
        float sv[ATT_TC_BN / 2], tmax = -INFINITY;
        for (int i = 0; i < ATT_TC_BN / 2; i++) {
            int c = 2 * i + h;
            sv[i] = j0 + c < M ? sc[r * ATT_TC_SPITCH + c] * scale : -INFINITY;
            tmax = fmaxf(tmax, sv[i]);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffff, tmax, 1));
        // Every tile has a valid key in its first column, so tmax is finite.
        float corr = 1.f;
        int moved = tmax > m + ATT_TC_SLACK;
        if (moved) {
            corr = expf(m - tmax); // 0 on the first tile
            m = tmax;
        }
        for (int o_ = 16; o_ > 0; o_ >>= 1) moved |= __shfl_xor_sync(0xffffffff, moved, o_);
        __syncwarp(); // the scores are in registers; the scratch is free
        if (moved && j0 > 0) {
            if (h == 0) rowf[r] = corr;
            __syncwarp();
            scale_rows<NK>(o, nk, sc, rowf, lane);
        }
        float psum = 0.f;
        for (int i = 0; i < ATT_TC_BN / 2; i++) {
            T p = from_f<T>(expf(sv[i] - m)); // masked keys: exp(−inf) = 0
            pm[r * ATT_TC_PPITCH + 2 * i + h] = p;
            psum += to_f(p); // the sum of the very values P·V uses
        }
        psum += __shfl_xor_sync(0xffffffff, psum, 1);
        l = l * corr + psum;
        __syncwarp();

        // O += P·V
        for (int kk = 0; kk < live; kk++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf;
            wmma::load_matrix_sync(pf, pm + kk * 16, ATT_TC_PPITCH);
            for (int f = 0; f < NK; f++) {
                if (f >= nk) break;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
                wmma::load_matrix_sync(vf, vs + kk * 16 * ld + f * 16, ld);
                wmma::mma_sync(o[f], pf, vf, o[f]);
            }
        }
        __syncwarp(); // P read before the next tile's scores overwrite it
    }

    // out = O / l, row by row through the scratch.
    if (h == 0) rowf[r] = 1.f / l;
    __syncwarp();
    int row0 = m0 + warp * 16;
    for (int f = 0; f < NK; f++) {
        if (f >= nk) break;
        wmma::store_matrix_sync(sc, o[f], 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
            int rr = e >> 4, c = f * 16 + (e & 15);
            if (row0 + rr < N && c < D) out[(b * N + row0 + rr) * D + c] = from_f<T>(sc[e] * rowf[rr]);
        }
        __syncwarp();
    }
}

#define ATT_TC(nk)                                                                                                                \
    extern "C" __global__ void attention_tc##nk##_f16(void *out, const void *q, const void *k, const void *v, int N, int M, int D, \
                                                      float scale) {                                                             \
        attention_tc_impl<f16, nk>((f16 *)out, (const f16 *)q, (const f16 *)k, (const f16 *)v, N, M, D, scale);                  \
    }                                                                                                                             \
    extern "C" __global__ void attention_tc##nk##_bf16(void *out, const void *q, const void *k, const void *v, int N, int M, int D, \
                                                       float scale) {                                                            \
        attention_tc_impl<bf16, nk>((bf16 *)out, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, N, M, D, scale);             \
    }                                                                                                                             \
    EMU_REGISTER(attention_tc##nk##_f16) EMU_REGISTER(attention_tc##nk##_bf16)
ATT_TC(4)
ATT_TC(8)
