// Tests of the CUDA emulator itself (make test-emu runs them first): the
// barrier and shuffle semantics the kernels rely on, WMMA, and the faults
// the emulator must report instead of computing garbage. Compiled like a
// kernel file: g++ -include emu.h.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../../kernels/mma.cuh"

typedef int CUresult;
typedef uint64_t CUdeviceptr;
extern "C" {
CUresult cuInit(unsigned);
CUresult cuMemAlloc_v2(CUdeviceptr *, size_t);
CUresult cuMemFree_v2(CUdeviceptr);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr, const void *, size_t, void *);
CUresult cuModuleLoadData(void **, const void *);
CUresult cuModuleGetFunction(void **, void *, const char *);
CUresult cuLaunchKernel(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *, void **, void **);
CUresult cuGetErrorString(CUresult, const char **);
CUresult cuMemcpyDtoH_v2(void *, CUdeviceptr, size_t);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr, CUdeviceptr, size_t, void *);
CUresult cuMemsetD8Async(CUdeviceptr, unsigned char, size_t, void *);
CUresult cuCtxSynchronize(void);
CUresult cuStreamCreate(void **, unsigned);
CUresult cuStreamBeginCapture_v2(void *, int);
CUresult cuStreamEndCapture(void *, void **);
CUresult cuGraphInstantiateWithFlags(void **, void *, unsigned long long);
CUresult cuGraphLaunch(void *, void *);
CUresult cuGraphExecDestroy(void *);
CUresult cuGraphDestroy(void *);
int cublasCreate_v2(void **);
int cublasSetStream_v2(void *, void *);
int cublasSetWorkspace_v2(void *, void *, size_t);
int cublasGemmStridedBatchedEx(void *, int, int, int, int, int, const void *, const void *, int, int, long long, const void *, int, int,
                               long long, const void *, void *, int, int, long long, int, int, int);
}

static int failures;
#define CHECK(cond, ...)                                          \
    do {                                                          \
        if (!(cond)) {                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                         \
            fprintf(stderr, "\n");                                \
            failures++;                                           \
        }                                                         \
    } while (0)

// --- kernels under test ---

extern "C" __global__ void block_reduce(float *out, const float *x) {
    __shared__ float partial[32];
    float v = x[blockIdx.x * blockDim.x + threadIdx.x];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.f;
        for (unsigned w = 0; w < blockDim.x / 32; w++) s += partial[w];
        out[blockIdx.x] = s;
    }
}
EMU_REGISTER(block_reduce)

extern "C" __global__ void shuffles(int *out) {
    int lane = threadIdx.x & 31, base = (threadIdx.x >> 5) * 32 * 3;
    out[base + lane] = __shfl_xor_sync(0xffffffff, lane * 10, 5);
    out[base + 32 + lane] = __shfl_sync(0xffffffff, lane * 10, 7);
    out[base + 64 + lane] = __shfl_down_sync(0xffffffff, lane * 10, 3);
}
EMU_REGISTER(shuffles)

// Threads that returned early count as arrived at __syncthreads.
extern "C" __global__ void early_exit(int *out) {
    if (threadIdx.x >= 40) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}
EMU_REGISTER(early_exit)

// Half a warp shuffles while the other half waits at __syncthreads: a hang on the hardware.
extern "C" __global__ void divergent(float *out) {
    float v = 1.f;
    if ((threadIdx.x & 31) < 16) v = __shfl_xor_sync(0xffffffff, v, 1);
    else __syncthreads();
    out[threadIdx.x] = v;
}
EMU_REGISTER(divergent)

extern "C" __global__ void partial_warp_shuffle(float *out) { out[threadIdx.x] = __shfl_xor_sync(0xffffffff, 1.f, 1); }
EMU_REGISTER(partial_warp_shuffle)

extern "C" __global__ void wmma_product(float *c, const __half *a, const __half *b, int offset) {
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 1.f);
    wmma::load_matrix_sync(fa, a + offset, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}
EMU_REGISTER(wmma_product)

// Odd lanes pass another pointer: WMMA needs the same arguments in every lane.
extern "C" __global__ void wmma_divergent(float *c, const __half *a) {
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.f);
    wmma::load_matrix_sync(fa, a + (threadIdx.x & 1) * 16, 16);
    wmma::load_matrix_sync(fb, a, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}
EMU_REGISTER(wmma_divergent)

extern "C" __global__ void dynamic_sum(float *out, int n) {
    DYNAMIC_SHARED(float, buf);
    buf[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.f;
        for (int i = 0; i < n; i++) s += buf[i];
        out[0] = s;
    }
}
EMU_REGISTER(dynamic_sum)

// A race: each thread reads the shared value its lower neighbour writes,
// with no barrier between. The default order hides it (lower threads run
// first); RFNET_EMU_ORDER=reverse exposes it.
extern "C" __global__ void neighbour_race(int *out) {
    __shared__ int v[64];
    v[threadIdx.x] = (int)threadIdx.x;
    out[threadIdx.x] = threadIdx.x ? v[threadIdx.x - 1] : -1;
}
EMU_REGISTER(neighbour_race)

extern "C" __global__ void write_at(float *x, int i) { x[i] = 1.f; }
EMU_REGISTER(write_at)

extern "C" __global__ void add_one(float *y, const float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] + 1.f;
}
EMU_REGISTER(add_one)

// --- mma.sync, ldmatrix, cp.async (kernels/mma.cuh, emu_mma.h, async.cc) ---

// mma_fragments builds each lane's A, B and C fragments of m16n8k16 straight
// from a [16][16], b [16][8] (k × n) and c [16][8] by the PTX ISA's layout
// (written out here independently of the emulator), multiplies, and stores
// D by the C layout: d = a·b + c only if both sides agree on the layout.
template <typename T> __device__ void mma_fragments_impl(float *d, const T *a, const T *b, const float *c) {
    unsigned lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    auto bits = [](T x) {
        uint16_t u;
        memcpy(&u, &x, 2);
        return (uint32_t)u;
    };
    auto pair = [&](const T *p) { return bits(p[0]) | bits(p[1]) << 16; };
    uint32_t fa[4] = {pair(a + g * 16 + 2 * t), pair(a + (g + 8) * 16 + 2 * t), pair(a + g * 16 + 2 * t + 8), pair(a + (g + 8) * 16 + 2 * t + 8)};
    T b0[2] = {b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g]}, b1[2] = {b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]};
    uint32_t fb[2] = {pair(b0), pair(b1)};
    float fc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]}, fd[4];
    mma_m16n8k16<T>(fd, fa, fb, fc);
    d[g * 8 + 2 * t] = fd[0], d[g * 8 + 2 * t + 1] = fd[1], d[(g + 8) * 8 + 2 * t] = fd[2], d[(g + 8) * 8 + 2 * t + 1] = fd[3];
}
extern "C" __global__ void mma_fragments_f16(float *d, const __half *a, const __half *b, const float *c) { mma_fragments_impl(d, a, b, c); }
extern "C" __global__ void mma_fragments_bf16(float *d, const __nv_bfloat16 *a, const __nv_bfloat16 *b, const float *c) {
    mma_fragments_impl(d, a, b, c);
}
EMU_REGISTER(mma_fragments_f16) EMU_REGISTER(mma_fragments_bf16)

// ldmatrix_index loads four 8×8 matrices of element indices (matrix i holds
// 100·i + 8·row + col) with x1, x2, x4 and their .trans forms; out[v][lane][reg].
extern "C" __global__ void ldmatrix_index(uint32_t *out, int misalign) {
    __shared__ __align__(16) uint16_t m[4][8][8];
    unsigned l = threadIdx.x & 31;
    for (int i = l; i < 256; i += 32) m[i / 64][(i / 8) % 8][i % 8] = (uint16_t)(100 * (i / 64) + i % 64);
    __syncwarp();
    const uint16_t *row = &m[l / 8][l % 8][0] + misalign;
    uint32_t r1[1], r2[2], r4[4];
    ldmatrix_x1(r1, row), out[0 * 128 + l * 4] = r1[0];
    ldmatrix_x2(r2, row), out[1 * 128 + l * 4] = r2[0], out[1 * 128 + l * 4 + 1] = r2[1];
    ldmatrix_x4(r4, row);
    for (int i = 0; i < 4; i++) out[2 * 128 + l * 4 + i] = r4[i];
    ldmatrix_x1_trans(r1, row), out[3 * 128 + l * 4] = r1[0];
    ldmatrix_x2_trans(r2, row), out[4 * 128 + l * 4] = r2[0], out[4 * 128 + l * 4 + 1] = r2[1];
    ldmatrix_x4_trans(r4, row);
    for (int i = 0; i < 4; i++) out[5 * 128 + l * 4 + i] = r4[i];
}
EMU_REGISTER(ldmatrix_index)

// ldmatrix from global memory: the hardware's ldmatrix reads shared memory only.
extern "C" __global__ void ldmatrix_global(uint32_t *out, const uint16_t *g) {
    uint32_t r[1];
    ldmatrix_x1(r, g + (threadIdx.x & 7) * 8);
    out[threadIdx.x] = r[0];
}
EMU_REGISTER(ldmatrix_global)

// Half the warp in mma.sync, the other half in ldmatrix: divergent lanes.
extern "C" __global__ void mma_divergent(float *d) {
    __shared__ __align__(16) uint16_t m[8][8];
    for (int i = threadIdx.x; i < 64; i += blockDim.x) m[i / 8][i % 8] = 0;
    __syncthreads();
    uint32_t a[4] = {}, b[2] = {}, r[1];
    float c[4] = {}, o[4] = {};
    if ((threadIdx.x & 31) < 16) mma_m16n8k16<__half>(o, a, b, c);
    else ldmatrix_x1(r, &m[threadIdx.x & 7][0]);
    d[threadIdx.x] = o[0];
}
EMU_REGISTER(mma_divergent)

extern "C" __global__ void mma_partial_warp(float *d) {
    uint32_t a[4] = {}, b[2] = {};
    float c[4] = {}, o[4];
    mma_m16n8k16<__half>(o, a, b, c);
    d[threadIdx.x] = o[0];
}
EMU_REGISTER(mma_partial_warp)

// cp_async_pipeline: each of 64 threads copies 16 bytes of src into shared
// memory in two groups (two tiles), then reads its neighbour's bytes. mode 0
// waits as it should; 1 reads tile 0 before waiting at all; 2 waits with
// wait_group 1 for tile 1 (too few groups retired); 3 reads its neighbour's
// copy without the __syncthreads after the wait; 4 never waits; 5 copies to
// a misaligned address; 6 copies into global memory. out gets the 8 floats
// read per thread (4 of each tile).
extern "C" __global__ void cp_async_pipeline(float *out, const float *src, float *dst, int mode) {
    __shared__ __align__(16) float tile[2][64][4];
    unsigned i = threadIdx.x, nb = (i + 1) % 64;
    float *to0 = &tile[0][i][0], *to1 = &tile[1][i][0];
    if (mode == 5) to0 = (float *)((char *)to0 + 4);
    if (mode == 6) to0 = dst + 4 * i;
    cp_async16(to0, src + 4 * i, true);
    cp_async_commit();
    cp_async16(to1, src + 256 + 4 * i, i % 2 == 0); // odd threads: zero fill
    cp_async_commit();
    if (mode == 4) return;
    if (mode == 1) {
        for (int j = 0; j < 4; j++) out[8 * i + j] = tile[0][i][j];
        cp_async_wait<0>();
        return;
    }
    cp_async_wait<1>();
    if (mode != 3) __syncthreads();
    for (int j = 0; j < 4; j++) out[8 * i + j] = tile[0][nb][j];
    if (mode != 2) cp_async_wait<0>();
    if (mode != 3) __syncthreads();
    for (int j = 0; j < 4; j++) out[8 * i + 4 + j] = tile[1][nb][j];
    if (mode == 2) cp_async_wait<0>();
}
EMU_REGISTER(cp_async_pipeline)

// --- harness ---

static const emu::KernelInfo &kernel(const char *name) {
    for (const emu::KernelInfo &k : emu::kernels())
        if (strcmp(k.name, name) == 0) return k;
    fprintf(stderr, "no kernel %s\n", name);
    exit(2);
}

static std::string run(const char *name, std::vector<void *> args, unsigned grid, unsigned block, size_t shared = 0) {
    return emu::run_grid(kernel(name), args.data(), emu::Dim3{grid, 1, 1}, emu::Dim3{block, 1, 1}, shared);
}

static std::string error_text(CUresult r) {
    const char *s = "";
    cuGetErrorString(r, &s);
    return s;
}

int main() {
    { // reduction through shuffles and shared memory, 3 blocks of 256
        std::vector<float> x(768), out(3);
        for (int i = 0; i < 768; i++) x[i] = (float)(i % 17) - 8.f;
        float *xp = x.data(), *op = out.data();
        std::string err = run("block_reduce", {&op, &xp}, 3, 256);
        CHECK(err.empty(), "block_reduce: %s", err.c_str());
        for (int b = 0; b < 3; b++) {
            float want = 0.f;
            for (int i = 0; i < 256; i++) want += x[b * 256 + i];
            CHECK(out[b] == want, "block %d: sum %g, want %g", b, out[b], want);
        }
    }
    { // shuffle variants, two warps
        std::vector<int> out(2 * 96);
        int *op = out.data();
        std::string err = run("shuffles", {&op}, 1, 64);
        CHECK(err.empty(), "shuffles: %s", err.c_str());
        for (int w = 0; w < 2; w++)
            for (int l = 0; l < 32; l++) {
                int *o = op + w * 96;
                CHECK(o[l] == (l ^ 5) * 10, "xor lane %d: %d", l, o[l]);
                CHECK(o[32 + l] == 70, "idx lane %d: %d", l, o[32 + l]);
                CHECK(o[64 + l] == (l + 3 < 32 ? l + 3 : l) * 10, "down lane %d: %d", l, o[64 + l]);
            }
    }
    { // early exit counts as arrival
        std::vector<int> out(64, 0);
        int *op = out.data();
        std::string err = run("early_exit", {&op}, 1, 64);
        CHECK(err.empty(), "early_exit: %s", err.c_str());
        CHECK(out[39] == 1 && out[40] == 0, "early_exit wrote %d %d", out[39], out[40]);
    }
    { // the reversed order exposes a read of a lower thread's write without a barrier
        std::vector<int> out(64);
        int *op = out.data();
        auto racy = [&](const char *order) {
            setenv("RFNET_EMU_ORDER", order, 1);
            std::fill(out.begin(), out.end(), 0);
            std::string err = run("neighbour_race", {&op}, 1, 64);
            CHECK(err.empty(), "neighbour_race (%s): %s", order, err.c_str());
            int wrong = 0;
            for (int i = 1; i < 64; i++) wrong += out[i] != i - 1;
            return wrong;
        };
        CHECK(racy("forward") == 0, "the default order should hide the race");
        CHECK(racy("reverse") > 0, "RFNET_EMU_ORDER=reverse should expose the race");
        unsetenv("RFNET_EMU_ORDER");
    }
    { // faults
        std::vector<float> out(64);
        float *op = out.data();
        std::string err = run("divergent", {&op}, 1, 64);
        CHECK(err.find("deadlock") != std::string::npos, "divergent barrier: got %s", err.c_str());
        err = run("partial_warp_shuffle", {&op}, 1, 48);
        CHECK(err.find("the hardware needs all 32") != std::string::npos, "partial warp: got %s", err.c_str());
    }
    { // WMMA: c = a·b + 1 with b column-major, then a misaligned load
        std::vector<__half> a(16 * 16 + 8), b(16 * 16);
        std::vector<float> c(256);
        for (int i = 0; i < 256; i++) {
            a[i] = __float2half((float)(i % 7) - 3.f);
            b[i] = __float2half((float)(i % 5) - 2.f);
        }
        alignas(32) static __half aa[16 * 16 + 16];
        memcpy(aa, a.data(), 256 * sizeof(__half));
        alignas(32) static __half bb[256];
        memcpy(bb, b.data(), sizeof bb);
        alignas(32) static float cc[256];
        __half *ap = aa, *bp = bb;
        float *cp = cc;
        int offset = 0;
        std::string err = run("wmma_product", {&cp, &ap, &bp, &offset}, 1, 32);
        CHECK(err.empty(), "wmma: %s", err.c_str());
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++) {
                float want = 1.f;
                for (int l = 0; l < 16; l++) want += __half2float(aa[i * 16 + l]) * __half2float(bb[j * 16 + l]);
                CHECK(cc[i * 16 + j] == want, "wmma (%d,%d): %g, want %g", i, j, cc[i * 16 + j], want);
            }
        err = run("wmma_divergent", {&cp, &ap}, 1, 32);
        CHECK(err.find("different fragments") != std::string::npos, "lanes with different fragments: got %s", err.c_str());
        offset = 4; // 8 bytes: not 32-byte aligned
        err = run("wmma_product", {&cp, &ap, &bp, &offset}, 1, 32);
        CHECK(err.find("aligned") != std::string::npos, "misaligned wmma: got %s", err.c_str());
    }
    { // mma.sync.m16n8k16 against a float product, f16 and bf16 (small integers: exact in both)
        std::vector<float> af(256), bf(128), c(128), d(128), want(128);
        for (int i = 0; i < 16; i++)
            for (int k = 0; k < 16; k++) af[i * 16 + k] = (float)((i * 3 + k * 5) % 7) - 3.f;
        for (int k = 0; k < 16; k++)
            for (int n = 0; n < 8; n++) bf[k * 8 + n] = (float)((k * 5 + n * 3) % 5) - 2.f;
        for (int i = 0; i < 128; i++) c[i] = 0.5f * (float)(i % 3);
        for (int i = 0; i < 16; i++)
            for (int n = 0; n < 8; n++) {
                float s = c[i * 8 + n];
                for (int k = 0; k < 16; k++) s += af[i * 16 + k] * bf[k * 8 + n];
                want[i * 8 + n] = s;
            }
        std::vector<__half> ah(256), bh(128);
        std::vector<__nv_bfloat16> ab(256), bb(128);
        for (int i = 0; i < 256; i++) ah[i] = __float2half(af[i]), ab[i] = __float2bfloat16(af[i]);
        for (int i = 0; i < 128; i++) bh[i] = __float2half(bf[i]), bb[i] = __float2bfloat16(bf[i]);
        float *dp = d.data(), *cp = c.data();
        void *ahp = ah.data(), *bhp = bh.data(), *abp = ab.data(), *bbp = bb.data();
        const char *names[] = {"mma_fragments_f16", "mma_fragments_bf16"};
        void **as[] = {&ahp, &abp}, **bs[] = {&bhp, &bbp};
        for (const char *order : {"forward", "reverse"}) {
            setenv("RFNET_EMU_ORDER", order, 1);
            for (int v = 0; v < 2; v++) {
                std::fill(d.begin(), d.end(), -1.f);
                std::string err = run(names[v], {&dp, as[v], bs[v], &cp}, 1, 32);
                CHECK(err.empty(), "%s: %s", names[v], err.c_str());
                int bad = 0;
                for (int i = 0; i < 128; i++) bad += d[i] != want[i];
                CHECK(bad == 0, "%s (%s): %d of 128 outputs wrong (d[0] %g, want %g)", names[v], order, bad, d[0], want[0]);
            }
        }
        unsetenv("RFNET_EMU_ORDER");
        std::vector<float> o(64);
        float *op = o.data();
        std::string err = run("mma_divergent", {&op}, 1, 32);
        CHECK(err.find("diverged") != std::string::npos, "mma.sync and ldmatrix in one warp: got %s", err.c_str());
        err = run("mma_partial_warp", {&op}, 1, 48);
        CHECK(err.find("the hardware needs all 32") != std::string::npos, "mma.sync in a partial warp: got %s", err.c_str());
    }
    { // ldmatrix x1/x2/x4 (.trans) of an index matrix: lane l, register i gets row l/4, columns 2(l%4)..+1 of matrix i
        std::vector<uint32_t> out(6 * 128);
        uint32_t *op = out.data();
        int misalign = 0;
        std::string err = run("ldmatrix_index", {&op, &misalign}, 1, 32);
        CHECK(err.empty(), "ldmatrix_index: %s", err.c_str());
        auto idx = [](int m, int r, int c) { return (uint32_t)(100 * m + 8 * r + c); };
        int bad = 0;
        for (int l = 0; l < 32; l++) {
            int r = l / 4, c = 2 * (l % 4);
            for (int v = 0; v < 6; v++) {
                int n = v % 3 == 0 ? 1 : v % 3 == 1 ? 2 : 4;
                for (int i = 0; i < n; i++) {
                    uint32_t want = v < 3 ? idx(i, r, c) | idx(i, r, c + 1) << 16 : idx(i, c, r) | idx(i, c + 1, r) << 16;
                    if (out[v * 128 + l * 4 + i] != want) {
                        if (bad++ < 4)
                            fprintf(stderr, "ldmatrix variant %d lane %d reg %d: %08x, want %08x\n", v, l, i, out[v * 128 + l * 4 + i], want);
                    }
                }
            }
        }
        CHECK(bad == 0, "ldmatrix: %d registers wrong", bad);
        misalign = 4; // 8 bytes past a row start
        err = run("ldmatrix_index", {&op, &misalign}, 1, 32);
        CHECK(err.find("16-byte aligned") != std::string::npos, "misaligned ldmatrix: got %s", err.c_str());
        alignas(16) static uint16_t g[64];
        uint16_t *gp = g;
        err = run("ldmatrix_global", {&op, &gp}, 1, 32);
        CHECK(err.find("shared memory") != std::string::npos, "ldmatrix from global memory: got %s", err.c_str());
    }
    { // cp.async: copies land at wait_group; what reads them early sees poison (NaN)
        alignas(16) static float src[512], dst[256];
        for (int i = 0; i < 512; i++) src[i] = (float)i;
        std::vector<float> out(8 * 64);
        float *op = out.data(), *sp = src, *dp = dst;
        auto pipeline = [&](int mode, const char *order) {
            setenv("RFNET_EMU_ORDER", order, 1);
            std::fill(out.begin(), out.end(), -1.f);
            std::string err = run("cp_async_pipeline", {&op, &sp, &dp, &mode}, 1, 64);
            unsetenv("RFNET_EMU_ORDER");
            return err;
        };
        auto wrong = [&]() {
            int n = 0;
            for (int i = 0; i < 64; i++) {
                int nb = (i + 1) % 64;
                for (int j = 0; j < 4; j++) {
                    n += out[8 * i + j] != src[4 * nb + j];
                    n += out[8 * i + 4 + j] != (nb % 2 == 0 ? src[256 + 4 * nb + j] : 0.f);
                }
            }
            return n;
        };
        for (const char *order : {"forward", "reverse"}) {
            std::string err = pipeline(0, order);
            CHECK(err.empty() && wrong() == 0, "cp.async pipeline (%s): %s, %d values wrong", order, err.c_str(), wrong());
        }
        std::string err = pipeline(1, "forward");
        CHECK(err.empty() && std::isnan(out[0]), "a read before cp.async.wait_group saw %g (%s)", out[0], err.c_str());
        err = pipeline(2, "forward");
        CHECK(err.empty() && wrong() > 0, "wait_group 1 before reading the newest group went unnoticed (%s)", err.c_str());
        int missed = 0;
        for (const char *order : {"forward", "reverse"}) {
            err = pipeline(3, order);
            missed += err.empty() && wrong() == 0;
        }
        CHECK(missed < 2, "a read of another thread's copy without __syncthreads went unnoticed in both orders");
        err = pipeline(4, "forward");
        CHECK(err.find("never waited") != std::string::npos, "copies never waited for: got %s", err.c_str());
        err = pipeline(5, "forward");
        CHECK(err.find("16-byte aligned") != std::string::npos, "misaligned cp.async: got %s", err.c_str());
        err = pipeline(6, "forward");
        CHECK(err.find("not in this block's shared memory") != std::string::npos, "cp.async into global memory: got %s", err.c_str());
    }
    { // dynamic shared memory
        float out = 0.f, *op = &out;
        int n = 100;
        std::string err = run("dynamic_sum", {&op, &n}, 1, 100, 100 * sizeof(float));
        CHECK(err.empty() && out == 4950.f, "dynamic_sum: %g %s", out, err.c_str());
    }
    { // the driver's checks, through a fake fatbin that names the kernels
        cuInit(0);
        std::string names;
        for (const emu::KernelInfo &k : emu::kernels()) names += std::string(k.name) + '\0';
        std::vector<unsigned char> image(16 + names.size());
        uint32_t magic = 0xBA55ED50u;
        uint16_t version = 1, header = 16;
        uint64_t size = names.size();
        memcpy(&image[0], &magic, 4);
        memcpy(&image[4], &version, 2);
        memcpy(&image[6], &header, 2);
        memcpy(&image[8], &size, 8);
        memcpy(&image[16], names.data(), names.size());
        void *module = nullptr, *fn = nullptr;
        CHECK(cuModuleLoadData(&module, image.data()) == 0, "load module: %s", error_text(1).c_str());
        CHECK(cuModuleGetFunction(&fn, module, "dynamic_sum") == 0, "get function");
        void *missing;
        CHECK(cuModuleGetFunction(&missing, module, "no_such_kernel") == 500, "a missing kernel is found");

        CUdeviceptr p;
        CHECK(cuMemAlloc_v2(&p, 64) == 0, "alloc");
        float host[32] = {};
        CUresult r = cuMemcpyHtoDAsync_v2(p + 32, host, 64, nullptr);
        CHECK(r == 1 && error_text(r).find("not inside one live device allocation") != std::string::npos, "overrun copy: %d %s", r,
              error_text(r).c_str());
        int n = 4;
        void *params[] = {&p, &n};
        r = cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 64 << 10, nullptr, params, nullptr);
        CHECK(r == 1 && error_text(r).find("dynamic shared memory") != std::string::npos, "64 KiB shared: %d %s", r, error_text(r).c_str());
        r = cuLaunchKernel(fn, 1, 1, 1, 2048, 1, 1, 0, nullptr, params, nullptr);
        CHECK(r == 1, "a block of 2048 threads launched");
        CHECK(cuMemFree_v2(p) == 0, "free");
        r = cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 128, nullptr, params, nullptr);
        CHECK(r == 1 && error_text(r).find("not live device memory") != std::string::npos, "freed pointer: %d %s", r, error_text(r).c_str());
        CHECK(cuMemFree_v2(p) == 1, "double free accepted");

        // A write just past the end of an allocation stops the kernel (SIGSEGV), in a child process.
        CUdeviceptr q;
        CHECK(cuMemAlloc_v2(&q, 4096) == 0, "alloc");
        void *wfn;
        CHECK(cuModuleGetFunction(&wfn, module, "write_at") == 0, "get function");
        int last = 1023, past = 1024;
        void *inside[] = {&q, &last}, *outside[] = {&q, &past};
        CHECK(cuLaunchKernel(wfn, 1, 1, 1, 1, 1, 1, 0, nullptr, inside, nullptr) == 0, "write of the last element");
        fflush(stderr);
        pid_t child = fork();
        if (child == 0) {
            cuLaunchKernel(wfn, 1, 1, 1, 1, 1, 1, 0, nullptr, outside, nullptr);
            _exit(0);
        }
        int status = 0;
        waitpid(child, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "a write past the end did not fault (status %d)", status);

        // Stream capture: a launch, a device copy, a memset and a cuBLAS
        // product recorded (values copied at the call) and replayed in order
        // with new inputs; a host copy, an allocation or a wait inside
        // invalidates the capture.
        void *afn, *s, *blocking, *graph, *exec, *blas;
        CHECK(cuModuleGetFunction(&afn, module, "add_one") == 0, "get function");
        CUdeviceptr x, y, z, ws, c;
        CHECK(cuMemAlloc_v2(&x, 1024) == 0 && cuMemAlloc_v2(&y, 1024) == 0 && cuMemAlloc_v2(&z, 1024) == 0 && cuMemAlloc_v2(&ws, 4096) == 0 &&
                  cuMemAlloc_v2(&c, 64) == 0,
              "alloc");
        CHECK(cuStreamCreate(&s, 1) == 0 && cuStreamCreate(&blocking, 0) == 0, "streams");
        CHECK(cuStreamBeginCapture_v2(blocking, 0) == 801, "a blocking stream captured");
        CHECK(cublasCreate_v2(&blas) == 0 && cublasSetStream_v2(blas, s) == 0, "cuBLAS handle");
        CHECK(cuStreamBeginCapture_v2(s, 0) == 0, "begin capture: %s", error_text(1).c_str());
        int count = 256;
        void *ap[] = {&y, &x, &count};
        CHECK(cuLaunchKernel(afn, 1, 1, 1, 256, 1, 1, 0, s, ap, nullptr) == 0, "captured launch: %s", error_text(1).c_str());
        count = 0; // the record holds the value of the launch
        CHECK(cuMemcpyDtoDAsync_v2(z, y, 1024, s) == 0, "captured copy");
        CHECK(cuMemsetD8Async(y, 0, 1024, s) == 0, "captured memset");
        float one = 1.f, zero = 0.f;
        // C (4×4) = A·B with A = B = the first 16 floats of z, column-major.
        CHECK(cublasGemmStridedBatchedEx(blas, 0, 0, 4, 4, 4, &one, (void *)z, 0, 4, 16, (void *)z, 0, 4, 16, &zero, (void *)c, 0, 4, 16, 1,
                                         68, -1) == 15,
              "a cuBLAS product captured without a workspace");
        CHECK(cublasSetWorkspace_v2(blas, (void *)ws, 4096) == 0, "workspace");
        CHECK(cublasGemmStridedBatchedEx(blas, 0, 0, 4, 4, 4, &one, (void *)z, 0, 4, 16, (void *)z, 0, 4, 16, &zero, (void *)c, 0, 4, 16, 1,
                                         68, -1) == 0,
              "captured cuBLAS product");
        CHECK(cuStreamEndCapture(s, &graph) == 0 && graph, "end capture: %s", error_text(1).c_str());
        CHECK(cuGraphInstantiateWithFlags(&exec, graph, 0) == 0, "instantiate");
        CHECK(cuGraphDestroy(graph) == 0, "destroy graph");
        for (int round = 0; round < 2; round++) {
            std::vector<float> in(256), out(256), prod(16);
            for (int i = 0; i < 256; i++) in[i] = (float)(round * 100 + i % 7);
            CHECK(cuMemcpyHtoDAsync_v2(x, in.data(), 1024, s) == 0, "refill");
            CHECK(cuGraphLaunch(exec, s) == 0, "replay %d: %s", round, error_text(1).c_str());
            CHECK(cuMemcpyDtoH_v2(out.data(), z, 1024) == 0, "download");
            for (int i = 0; i < 256; i++) CHECK(out[i] == in[i] + 1.f, "replay %d: z[%d] = %g, want %g", round, i, out[i], in[i] + 1.f);
            CHECK(cuMemcpyDtoH_v2(out.data(), y, 1024) == 0 && out[0] == 0.f && out[255] == 0.f, "replay %d: the memset", round);
            CHECK(cuMemcpyDtoH_v2(prod.data(), c, 64) == 0, "download");
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    float want = 0.f;
                    for (int l = 0; l < 4; l++) want += (in[i + 4 * l] + 1.f) * (in[l + 4 * j] + 1.f);
                    CHECK(prod[i + 4 * j] == want, "replay %d: product (%d, %d) = %g, want %g", round, i, j, prod[i + 4 * j], want);
                }
        }
        CHECK(cuGraphExecDestroy(exec) == 0, "destroy exec");
        CHECK(cuStreamBeginCapture_v2(s, 0) == 0, "begin capture");
        float h[4] = {};
        CUdeviceptr more;
        r = cuMemcpyHtoDAsync_v2(x, h, 16, s);
        CHECK(r == 900, "an upload inside a capture: %d", r);
        CHECK(cuMemAlloc_v2(&more, 64) == 900, "an allocation inside a capture");
        CHECK(cuMemcpyDtoH_v2(h, x, 16) == 900, "a download inside a capture");
        CHECK(cuCtxSynchronize() == 900, "a synchronization inside a capture");
        r = cuStreamEndCapture(s, &graph);
        CHECK(r == 901 && graph == nullptr && error_text(r).find("cuMemcpyHtoDAsync") != std::string::npos, "invalidated capture: %d %s", r,
              error_text(r).c_str());
        CHECK(cuCtxSynchronize() == 0, "the context after an invalidated capture");
        // Ending a global-mode capture on another thread fails (and the capture goes on).
        CHECK(cuStreamBeginCapture_v2(s, 0) == 0, "begin capture");
        CUresult other = 0;
        std::thread([&] { other = cuStreamEndCapture(s, &graph); }).join();
        CHECK(other == 908, "a capture ended on another thread: %d", other);
        CHECK(cuStreamEndCapture(s, &graph) == 0 && graph, "end capture on its thread");
        CHECK(cuGraphDestroy(graph) == 0, "destroy graph");
    }
    if (failures) {
        fprintf(stderr, "cuda emulator self-test: %d failures\n", failures);
        return 1;
    }
    printf("cuda emulator self-test: ok\n");
    return 0;
}
