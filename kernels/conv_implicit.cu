// The input gradient of a 3×3 convolution with stride 1 as one implicit
// GEMM on tensor cores (mma.sync m16n8k16, f32 accumulation), with no
// column buffer:
//
//   dx[n] [C, H·W] = Wᵀ [C, O·9] · D[n] [O·9, H·W]
//
// D[n] is the matrix of columns that the im2col path's GEMM writes and
// col2im folds; here it is never stored: its element (k, i), k = o·9 + ky·3 +
// kx and i = iy·W + ix, is dy[n, o, iy + pad − ky, ix + pad − kx], and 0
// where that output position is outside dy (no output position read x[iy,
// ix] through that tap). (With stride 2, three taps in four would be zeros
// multiplied: the downsampling convolutions keep im2col's path.) Wᵀ is w [O, C, 3, 3] read transposed: for each o,
// row c holds the 9 contiguous taps w[o, c]. So the pass reads dy and w and
// writes dx once, where im2col's path writes and reads back a buffer 9 times
// dx's size; and each element of dx is one dot product over O·9 terms
// accumulated in f32 and rounded once (col2im adds 9 partial sums already
// rounded to T).
//
// A block of 8 warps computes a 64×128 tile of dx[n] (64 channels, 128
// positions); each warp 32×32, as 2×4 m16n8 accumulator tiles. Per 32-wide
// slice of K, every thread gathers 8 elements of Wᵀ and 16 of D into
// registers while the warps multiply the current slice out of one stage of
// shared memory (A fragments by ldmatrix, B's by ldmatrix.trans from D's
// rows), then stores them into the other stage. Zeros fill the tile past
// C, H·W and O·9.
//
// Grid: (⌈H·W/128⌉, ⌈C/64⌉, N·splits). At the UNet's deep levels at batch 1
// (1280 channels of 16² or 8²) the tiles alone are 20-40 blocks for a card
// of 132 SMs, while K is 11520 deep, so the launcher splits K across blocks
// and a second pass sums their f32 partial tiles. CPU reference:
// cpu/conv.go's conv2dBackwardInput; the launcher and the choice of path:
// cuda/conv.go.
#include "common.cuh"
#include "conv.cuh"
#include "mma.cuh"

namespace {
constexpr int DG_BM = 64, DG_BN = 128, DG_BK = 32, DG_WARPS = 8;
// Shared-memory row pitches: 8 elements of padding keep each row 16-byte
// aligned for ldmatrix and move the 8 rows one ldmatrix reads onto
// different banks.
constexpr int DG_LDA = DG_BK + 8, DG_LDB = DG_BN + 8;
constexpr int DG_STAGE = DG_BM * DG_LDA + DG_BK * DG_LDB; // elements of one stage
} // namespace

// DgradGather holds one thread's share of a K slice between its loads from
// global memory and its store to shared memory: of Wᵀ, column ak of rows ar
// + 8j; of D, rows br + 2j of the column of x's position (iy, ix).
// (A struct and not lambdas: the emulator's build checks a kernel's local
// symbols for shared arrays, and a lambda's operator() is one.)
template <typename T> struct DgradGather {
    T a[8], b[16];

    __device__ __forceinline__ void load(const T *w, const T *dy, const Conv &p, int O, int c0, int ar, int ak, int br, bool posIn, int iy,
                                         int ix, int k0) {
        const int K = O * 9, OHW = p.OH * p.OW;
        {
            int k = k0 + ak, o = k / 9, tap = k - 9 * o;
            const T *wk = w + (int64_t)o * p.C * 9 + tap;
#pragma unroll
            for (int j = 0; j < 8; j++) {
                int c = c0 + ar + 8 * j;
                a[j] = k < K && c < p.C ? wk[(int64_t)c * 9] : from_f<T>(0.f);
            }
        }
#pragma unroll
        for (int j = 0; j < 16; j++) {
            int k = k0 + br + 2 * j, o = k / 9, tap = k - 9 * o, ky = tap / 3, kx = tap - 3 * ky;
            int oy = iy + p.pad - ky, ox = ix + p.pad - kx;
            bool in = posIn && k < K && oy >= 0 && ox >= 0 && oy < p.OH && ox < p.OW;
            b[j] = in ? dy[(int64_t)o * OHW + oy * p.OW + ox] : from_f<T>(0.f);
        }
    }

    __device__ __forceinline__ void store(T *as, T *bs, int ar, int ak, int br, int bi) const {
#pragma unroll
        for (int j = 0; j < 8; j++) as[(ar + 8 * j) * DG_LDA + ak] = a[j];
#pragma unroll
        for (int j = 0; j < 16; j++) bs[(br + 2 * j) * DG_LDB + bi] = b[j];
    }
};

// O is dy's channel count (Conv describes x and the kernel's window). With
// splits > 1, grid z is sample × split: split s takes K's slices [s·chunk,
// (s+1)·chunk) and writes its f32 sums to partial [splits, N, C, H·W] for
// conv2d_backward_input_sum; with one split the block writes dx itself.
template <typename T>
__device__ void conv2d_backward_input_impl(T *dx, float *partial, const T *dy, const T *w, Conv p, int O, int splits, int chunk) {
    DYNAMIC_SHARED(char, dgrad_smem);
    // Stage st holds a Wᵀ slice [BM][LDA] (channels × k) at as + st·STAGE
    // and a D slice [BK][LDB] (k × positions) at bs + st·STAGE.
    T *as = (T *)dgrad_smem, *bs = as + DG_BM * DG_LDA;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 2, wn = warp & 3, g = lane >> 2, t = lane & 3;
    const int HW = p.H * p.W, OHW = p.OH * p.OW, K = O * 9;
    const int c0 = blockIdx.y * DG_BM, i0 = blockIdx.x * DG_BN;
    const int n = blockIdx.z / splits, split = blockIdx.z - n * splits, N = gridDim.z / splits;
    const int kBegin = split * chunk * DG_BK, kEnd = K < kBegin + chunk * DG_BK ? K : kBegin + chunk * DG_BK;
    dy += (int64_t)n * O * OHW;
    dx += (int64_t)n * p.C * HW;
    if (partial) partial += ((int64_t)split * N + n) * p.C * HW;

    // This thread's gathers (DgradGather): column ak of Wᵀ, column bi of D
    // (one position of x for the whole pass).
    const int ak = tid & 31, ar = tid >> 5;
    const int bi = tid & 127, br = tid >> 7;
    const int pos = i0 + bi;
    const bool posIn = pos < HW;
    const int iy = posIn ? pos / p.W : 0, ix = posIn ? pos - iy * p.W : 0;
    DgradGather<T> next; // the next K slice, on its way to shared memory

    float acc[2][4][4];
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int r = 0; r < 4; r++) acc[mi][ni][r] = 0.f;

    // Two stages of shared memory: slice s is multiplied out of stage s % 2
    // while slice s+1 travels from global memory through registers into the
    // other, so one barrier per slice suffices.
    next.load(w, dy, p, O, c0, ar, ak, br, posIn, iy, ix, kBegin);
    next.store(as, bs, ar, ak, br, bi);
    __syncthreads();
    for (int k0 = kBegin, st = 0; k0 < kEnd; k0 += DG_BK, st ^= 1) {
        const bool more = k0 + DG_BK < kEnd;
        if (more) next.load(w, dy, p, O, c0, ar, ak, br, posIn, iy, ix, k0 + DG_BK); // in flight while this slice is multiplied
        const T *sa = as + st * DG_STAGE, *sb = bs + st * DG_STAGE;
#pragma unroll
        for (int kk = 0; kk < DG_BK; kk += 16) {
            uint32_t a[2][4], b[4][2];
#pragma unroll
            for (int mi = 0; mi < 2; mi++) ldmatrix_x4(a[mi], sa + (wm * 32 + mi * 16 + (lane & 15)) * DG_LDA + kk + (lane >> 4) * 8);
            const T *brow = sb + (kk + ((lane >> 3) & 1) * 8 + (lane & 7)) * DG_LDB + wn * 32 + (lane >> 4) * 8;
#pragma unroll
            for (int n2 = 0; n2 < 2; n2++) {
                uint32_t v[4];
                ldmatrix_x4_trans(v, brow + n2 * 16);
                b[2 * n2][0] = v[0], b[2 * n2][1] = v[1], b[2 * n2 + 1][0] = v[2], b[2 * n2 + 1][1] = v[3];
            }
#pragma unroll
            for (int mi = 0; mi < 2; mi++)
#pragma unroll
                for (int ni = 0; ni < 4; ni++) mma_m16n8k16<T>(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
        }
        // The other stage was last read before the previous barrier.
        if (more) next.store(as + (st ^ 1) * DG_STAGE, bs + (st ^ 1) * DG_STAGE, ar, ak, br, bi);
        __syncthreads();
    }

    // Lane (g, t) holds rows g and g+8, columns 2t and 2t+1 of each tile.
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            int c = c0 + wm * 32 + mi * 16 + g + 8 * r;
            if (c >= p.C) continue;
#pragma unroll
            for (int ni = 0; ni < 4; ni++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int i = i0 + wn * 32 + ni * 8 + 2 * t + e;
                    if (i >= HW) continue;
                    if (splits == 1) dx[(int64_t)c * HW + i] = from_f<T>(acc[mi][ni][2 * r + e]);
                    else partial[(int64_t)c * HW + i] = acc[mi][ni][2 * r + e];
                }
        }
}

// conv2d_backward_input_sum: dx = Σ_s partial[s] over the splits in order
// (deterministic, unlike atomics), rounded once to T; total is N·C·H·W.
template <typename T> __device__ void conv2d_backward_input_sum_impl(T *dx, const float *partial, int splits, int64_t total) {
    FOR_EACH(i, total) {
        float s = 0.f;
        for (int j = 0; j < splits; j++) s += partial[j * total + i];
        dx[i] = from_f<T>(s);
    }
}

#define CONV_DGRAD(S, T)                                                                                                          \
    extern "C" __global__ void __launch_bounds__(DG_WARPS * 32)                                                                   \
        conv2d_backward_input_##S(void *dx, float *partial, const void *dy, const void *w, Conv p, int O, int splits, int chunk) { \
        conv2d_backward_input_impl<T>((T *)dx, partial, (const T *)dy, (const T *)w, p, O, splits, chunk);                        \
    }                                                                                                                             \
    extern "C" __global__ void conv2d_backward_input_sum_##S(void *dx, const float *partial, int splits, int64_t total) {         \
        conv2d_backward_input_sum_impl<T>((T *)dx, partial, splits, total);                                                       \
    }                                                                                                                             \
    EMU_REGISTER(conv2d_backward_input_##S) EMU_REGISTER(conv2d_backward_input_sum_##S)
CONV_DGRAD(f16, f16)
CONV_DGRAD(bf16, bf16)
