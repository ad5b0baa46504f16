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
#include <vector>

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
    }
    if (failures) {
        fprintf(stderr, "cuda emulator self-test: %d failures\n", failures);
        return 1;
    }
    printf("cuda emulator self-test: ok\n");
    return 0;
}
