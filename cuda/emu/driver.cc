// The emulator's driver API: the cu* functions cuda/driver.c loads, on host
// memory. Device pointers are host addresses; every allocation is tracked, so
// copies, memsets, kernel pointer arguments and frees are checked against
// live allocations (the GPU would read garbage or fault, later and with less
// to say), and each ends at an inaccessible page. Launches run at once, synchronously; a failed launch makes the
// context unusable, as on the hardware, and the message names the kernel.
//
// Stream capture (CUDA graphs): while a stream captures, launches, memsets
// and device copies on it (and cuBLAS products bound to it, cublas.cc) are
// recorded, arguments copied, instead of run; a graph launch runs the record
// in order, checking its pointers again. Capture is in global mode, the one
// rfnet uses: a call that would synchronize or touch the host (a download,
// an upload from pageable memory, cuCtxSynchronize, cuMemAlloc, cuMemFree,
// an event) fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidates
// the capture, whose end then fails with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
// so a host copy left inside a captured call fails here as on the hardware.
// As on the hardware, a capture not in relaxed mode must end on the thread
// that began it (Go moves goroutines between threads: the backend locks the
// thread for a capture). Stricter than the hardware: only a non-blocking
// stream may capture, and one capture runs at a time.
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "runtime.h"

#define API extern "C" __attribute__((visibility("default")))

typedef int CUresult;
typedef uint64_t CUdeviceptr;

namespace emu {

std::vector<KernelInfo> &kernels() {
    static std::vector<KernelInfo> all;
    return all;
}
void register_kernel(const KernelInfo &k) { kernels().push_back(k); }

namespace {

enum {
    SUCCESS = 0,
    INVALID_VALUE = 1,
    OUT_OF_MEMORY = 2,
    INVALID_DEVICE = 101,
    INVALID_IMAGE = 200,
    INVALID_CONTEXT = 201,
    INVALID_HANDLE = 400,
    ILLEGAL_STATE = 401,
    NOT_FOUND = 500,
    LAUNCH_FAILED = 719,
    NOT_SUPPORTED = 801,
    STREAM_CAPTURE_UNSUPPORTED = 900,
    STREAM_CAPTURE_INVALIDATED = 901,
    STREAM_CAPTURE_WRONG_THREAD = 908,
};

std::mutex mu; // the driver state is global; Go may call from any thread
struct Allocation {
    size_t bytes;  // asked for
    char *map;     // the pages holding it, the last one inaccessible
    size_t mapped;
};
std::map<uintptr_t, Allocation> allocations; // by start
size_t inUse;
size_t total = size_t(8) << 30;
std::string detail;   // the last error, in words
CUresult sticky;      // a failed launch loses the context
int contextTag;

struct Stream {
    unsigned flags; // CU_STREAM_NON_BLOCKING = 1
};
// A graph is its operations in stream order; an executable graph a copy.
struct Graph {
    std::vector<std::function<std::string()>> ops;
};
Stream *capturing;  // the stream in capture, if any
Graph *captured;    // what it has recorded
std::string invalid; // why the capture was invalidated ("" while it is valid)
std::thread::id captureThread; // the thread that began it
bool captureRelaxed;           // CU_STREAM_CAPTURE_MODE_RELAXED: any thread may end it

struct Module {
    std::string name;
};
std::vector<Module *> modules;

struct Event {
    std::chrono::steady_clock::time_point t;
    bool recorded;
};

CUresult fail(CUresult r, const std::string &what) {
    detail = what;
    return r;
}

// live finds the allocation holding [p, p+n); false when there is none.
bool live(uintptr_t p, size_t n) {
    auto it = allocations.upper_bound(p);
    if (it == allocations.begin()) return false;
    --it;
    return p >= it->first && p + n <= it->first + it->second.bytes;
}

std::string hex(uintptr_t p) {
    char b[32];
    snprintf(b, sizeof b, "0x%llx", (unsigned long long)p);
    return b;
}

CUresult check_range(const char *op, CUdeviceptr p, size_t n) {
    if (n == 0) return SUCCESS;
    if (!live(p, n)) return fail(INVALID_VALUE, std::string(op) + ": [" + hex(p) + ", +" + std::to_string(n) + ") is not inside one live device allocation");
    return SUCCESS;
}

// recording reports whether stream s captures (then its operations are recorded).
bool recording(void *s) { return capturing && (Stream *)s == capturing; }

// forbid fails a call that a global-mode capture does not allow, and
// invalidates the capture, as the hardware does.
CUresult forbid(const std::string &what) {
    if (!capturing) return SUCCESS;
    if (invalid.empty()) invalid = what;
    return fail(STREAM_CAPTURE_UNSUPPORTED, what + " while a stream is capturing (a CUDA graph cannot hold it)");
}

// pointer_error checks a launch's pointer arguments against live allocations.
std::string pointer_error(const KernelInfo &k, void **params) {
    for (size_t i = 0; i < k.pointer.size(); i++) {
        if (!k.pointer[i]) continue;
        uintptr_t p;
        memcpy(&p, params[i], sizeof p);
        if (p != 0 && !live(p, 1))
            return std::string(k.name) + ": pointer argument " + std::to_string(i) + " (" + hex(p) + ") is not live device memory (freed, or never allocated)";
    }
    return "";
}

} // namespace

bool stream_capturing(void *stream) {
    std::lock_guard<std::mutex> lock(mu);
    return recording(stream);
}

bool capture_op(void *stream, std::function<std::string()> op) {
    std::lock_guard<std::mutex> lock(mu);
    if (!recording(stream)) return false;
    captured->ops.push_back(std::move(op));
    return true;
}

// device_range reports whether [p, p+n) lies in one live allocation (for the cuBLAS emulation).
bool device_range(const void *p, size_t n) {
    return live((uintptr_t)p, n);
}

} // namespace emu

using namespace emu;

#define LOCK() std::lock_guard<std::mutex> lock_(mu)
#define CONTEXT_OK() do { if (sticky) return fail(sticky, "the context was lost by an earlier failed launch: " + detail); } while (0)

API CUresult cuInit(unsigned) {
    if (const char *m = getenv("RFNET_EMU_MEMORY_GIB")) total = size_t(atof(m) * (1 << 30));
    return SUCCESS;
}
API CUresult cuDriverGetVersion(int *v) { *v = 12040; return SUCCESS; }
API CUresult cuDeviceGetCount(int *n) { *n = 1; return SUCCESS; }
API CUresult cuDeviceGet(int *d, int ordinal) {
    if (ordinal != 0) return fail(INVALID_DEVICE, "the emulator has one device, 0");
    *d = 0;
    return SUCCESS;
}
API CUresult cuDeviceGetName(char *name, int len, int) {
    snprintf(name, len, "CUDA emulator on the CPU");
    return SUCCESS;
}
API CUresult cuDeviceTotalMem_v2(size_t *bytes, int) { *bytes = total; return SUCCESS; }
API CUresult cuDeviceGetAttribute(int *v, int attr, int) {
    switch (attr) {
    case 75: *v = 9; return SUCCESS;  // compute capability 9.0, as an H100
    case 76: *v = 0; return SUCCESS;
    case 97: *v = 232448; return SUCCESS; // shared memory per block, opt-in
    }
    return fail(INVALID_VALUE, "device attribute " + std::to_string(attr) + " is not emulated");
}
API CUresult cuDevicePrimaryCtxRetain(void **ctx, int) { *ctx = &contextTag; return SUCCESS; }
API CUresult cuCtxSetCurrent(void *ctx) {
    if (ctx != &contextTag) return fail(INVALID_CONTEXT, "not the emulator's context");
    return SUCCESS;
}
API CUresult cuCtxSynchronize(void) {
    LOCK();
    if (CUresult r = forbid("cuCtxSynchronize")) return r;
    CONTEXT_OK();
    return SUCCESS;
}
API CUresult cuStreamCreate(void **s, unsigned flags) {
    if (flags > 1) return fail(INVALID_VALUE, "stream flags " + std::to_string(flags) + " (0 or CU_STREAM_NON_BLOCKING)");
    *s = new Stream{flags};
    return SUCCESS;
}

API CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
    LOCK();
    if (CUresult r = forbid("cuMemAlloc")) return r;
    CONTEXT_OK();
    if (n == 0) return fail(INVALID_VALUE, "cuMemAlloc of 0 bytes");
    if (inUse + n > total) return fail(OUT_OF_MEMORY, "out of the emulated " + std::to_string(total >> 20) + " MiB");
    // The allocation ends where an inaccessible page begins, so a kernel that
    // runs past the end (by more than the rounding to 256 bytes, the
    // driver's alignment) stops with SIGSEGV in the kernel, not later.
    size_t rounded = (n + 255) / 256 * 256, page = 4096, mapped = (rounded + page - 1) / page * page + page;
    char *map = (char *)mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return fail(OUT_OF_MEMORY, "host allocation failed");
    mprotect(map + mapped - page, page, PROT_NONE);
    char *m = map + mapped - page - rounded;
    // Fresh device memory holds garbage; NaN bytes make reads of it visible.
    memset(m, 0xFF, rounded);
    allocations[(uintptr_t)m] = Allocation{n, map, mapped};
    inUse += n;
    *p = (CUdeviceptr)m;
    return SUCCESS;
}
API CUresult cuMemFree_v2(CUdeviceptr p) {
    LOCK();
    if (CUresult r = forbid("cuMemFree")) return r;
    auto it = allocations.find((uintptr_t)p);
    if (it == allocations.end()) return fail(INVALID_VALUE, "cuMemFree of " + hex(p) + ", which is not the start of a live allocation");
    inUse -= it->second.bytes;
    // Unmapped: a kernel using the freed buffer faults (until the addresses are reused).
    munmap(it->second.map, it->second.mapped);
    allocations.erase(it);
    return SUCCESS;
}
// Kernels run at launch, so the stream is always drained: the async copy is immediate.
// On a capturing stream it is refused: Go's memory is pageable, and a graph
// can only copy from pinned memory.
API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, void *s) {
    LOCK();
    if (recording(s)) return forbid("cuMemcpyHtoDAsync from pageable memory");
    CONTEXT_OK();
    if (CUresult r = check_range("cuMemcpyHtoDAsync destination", dst, n)) return r;
    memcpy((void *)dst, src, n);
    return SUCCESS;
}
API CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
    LOCK();
    if (CUresult r = forbid("cuMemcpyDtoH")) return r;
    CONTEXT_OK();
    if (CUresult r = check_range("cuMemcpyDtoH source", src, n)) return r;
    memcpy(dst, (const void *)src, n);
    return SUCCESS;
}
API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void *s) {
    LOCK();
    CONTEXT_OK();
    if (CUresult r = check_range("cuMemcpyDtoD destination", dst, n)) return r;
    if (CUresult r = check_range("cuMemcpyDtoD source", src, n)) return r;
    auto op = [dst, src, n]() -> std::string {
        if (n && (!live(dst, n) || !live(src, n))) return "cuMemcpyDtoD: [" + hex(src) + " or " + hex(dst) + ", +" + std::to_string(n) + ") is no longer live";
        memmove((void *)dst, (const void *)src, n);
        return "";
    };
    if (recording(s)) captured->ops.push_back(op);
    else op();
    return SUCCESS;
}
API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void *s) {
    LOCK();
    CONTEXT_OK();
    if (CUresult r = check_range("cuMemsetD8", dst, n)) return r;
    auto op = [dst, v, n]() -> std::string {
        if (n && !live(dst, n)) return "cuMemsetD8: [" + hex(dst) + ", +" + std::to_string(n) + ") is no longer live";
        memset((void *)dst, v, n);
        return "";
    };
    if (recording(s)) captured->ops.push_back(op);
    else op();
    return SUCCESS;
}
API CUresult cuMemGetInfo_v2(size_t *freeBytes, size_t *totalBytes) {
    LOCK();
    *freeBytes = total - inUse;
    *totalBytes = total;
    return SUCCESS;
}

// cuModuleLoadData accepts a fatbin whose text names every kernel of one
// emulated kernels/*.cu: the module is that file's kernels, so a kernel the
// fatbin lacks is not found, as on the hardware.
API CUresult cuModuleLoadData(void **module, const void *image) {
    LOCK();
    const unsigned char *img = (const unsigned char *)image;
    uint32_t magic;
    uint16_t headerSize;
    uint64_t fatSize;
    memcpy(&magic, img, 4);
    memcpy(&headerSize, img + 6, 2);
    memcpy(&fatSize, img + 8, 8);
    if (magic != 0xBA55ED50u) return fail(INVALID_IMAGE, "not a fatbin (magic " + hex(magic) + ")");
    size_t size = headerSize + fatSize;
    std::map<std::string, bool> complete; // module -> all its kernels named in the image
    for (const KernelInfo &k : kernels()) {
        std::string name = std::string(k.name) + '\0';
        bool found = memmem(img, size, name.data(), name.size()) != nullptr;
        auto it = complete.find(k.module);
        complete[k.module] = (it == complete.end() ? true : it->second) && found;
    }
    for (auto &m : complete)
        if (m.second) {
            modules.push_back(new Module{m.first});
            *module = modules.back();
            return SUCCESS;
        }
    return fail(INVALID_IMAGE, "the fatbin holds the kernels of no emulated kernels/*.cu (stale fatbin or emulator?)");
}

API CUresult cuModuleGetFunction(void **fn, void *module, const char *name) {
    LOCK();
    Module *m = (Module *)module;
    for (KernelInfo &k : kernels())
        if (m->name == k.module && strcmp(k.name, name) == 0) {
            *fn = &k;
            return SUCCESS;
        }
    return fail(NOT_FOUND, std::string("no kernel ") + name + " in module " + m->name);
}

API CUresult cuFuncSetAttribute(void *fn, int attr, int value) {
    LOCK();
    KernelInfo *k = (KernelInfo *)fn;
    if (attr != 8) return fail(INVALID_VALUE, "function attribute " + std::to_string(attr) + " is not emulated");
    if (value < 0 || value > 232448) return fail(INVALID_VALUE, std::string(k->name) + ": " + std::to_string(value) + " bytes of dynamic shared memory is more than a block may have (227 KiB)");
    k->maxDynamicShared = value;
    return SUCCESS;
}

API CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                            unsigned shmem, void *stream, void **params, void **extra) {
    LOCK();
    CONTEXT_OK();
    KernelInfo *k = (KernelInfo *)fn;
    std::string name = k->name;
    if (extra) return fail(INVALID_VALUE, name + ": the extra argument form is not emulated");
    if (bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 || (size_t)bx * by * bz > 1024)
        return fail(INVALID_VALUE, name + ": block " + std::to_string(bx) + "×" + std::to_string(by) + "×" + std::to_string(bz) + " (at most 1024 threads)");
    if (gx == 0 || gy == 0 || gz == 0 || gx > 2147483647u || gy > 65535 || gz > 65535)
        return fail(INVALID_VALUE, name + ": grid " + std::to_string(gx) + "×" + std::to_string(gy) + "×" + std::to_string(gz) + " out of range");
    if ((int)shmem > k->maxDynamicShared)
        return fail(INVALID_VALUE, name + ": " + std::to_string(shmem) + " bytes of dynamic shared memory, more than the " +
                                       std::to_string(k->maxDynamicShared) + " allowed (cuFuncSetAttribute raises it)");
    std::string bad = pointer_error(*k, params);
    if (!bad.empty()) return fail(INVALID_VALUE, bad);
    if (recording(stream)) {
        // The values are copied now, as cuLaunchKernel copies them: the
        // caller's argument block is gone by the replay.
        std::vector<char> blob;
        std::vector<size_t> offs;
        for (size_t i = 0; i < k->size.size(); i++) {
            blob.resize((blob.size() + 15) / 16 * 16);
            offs.push_back(blob.size());
            blob.insert(blob.end(), (const char *)params[i], (const char *)params[i] + k->size[i]);
        }
        Dim3 grid{gx, gy, gz}, block{bx, by, bz};
        captured->ops.push_back([k, blob, offs, grid, block, shmem]() mutable -> std::string {
            std::vector<void *> p(offs.size());
            for (size_t i = 0; i < offs.size(); i++) p[i] = blob.data() + offs[i];
            std::string err = pointer_error(*k, p.data());
            if (err.empty()) err = run_grid(*k, p.data(), grid, block, shmem);
            return err.empty() ? "" : std::string(k->name) + ": " + err;
        });
        return SUCCESS;
    }
    std::string err = run_grid(*k, params, Dim3{gx, gy, gz}, Dim3{bx, by, bz}, shmem);
    if (!err.empty()) {
        sticky = LAUNCH_FAILED;
        return fail(LAUNCH_FAILED, name + ": " + err);
    }
    return SUCCESS;
}

API CUresult cuGetErrorString(CUresult r, const char **s) {
    static std::string msg;
    const char *base;
    switch (r) {
    case SUCCESS: base = "no error"; break;
    case INVALID_VALUE: base = "invalid argument"; break;
    case OUT_OF_MEMORY: base = "out of memory"; break;
    case INVALID_DEVICE: base = "invalid device ordinal"; break;
    case INVALID_IMAGE: base = "device kernel image is invalid"; break;
    case INVALID_CONTEXT: base = "invalid device context"; break;
    case INVALID_HANDLE: base = "invalid resource handle"; break;
    case NOT_FOUND: base = "named symbol not found"; break;
    case LAUNCH_FAILED: base = "unspecified launch failure"; break;
    case ILLEGAL_STATE: base = "the operation cannot be performed in the present state"; break;
    case NOT_SUPPORTED: base = "operation not supported"; break;
    case STREAM_CAPTURE_UNSUPPORTED: base = "operation not permitted when stream is capturing"; break;
    case STREAM_CAPTURE_INVALIDATED: base = "operation failed due to a previous error during capture"; break;
    case STREAM_CAPTURE_WRONG_THREAD: base = "attempt to terminate a thread-local capture sequence from another thread"; break;
    default: return INVALID_VALUE;
    }
    msg = std::string(base) + (detail.empty() ? "" : " [emulator: " + detail + "]");
    *s = msg.c_str();
    return SUCCESS;
}

API CUresult cuEventCreate(void **ev, unsigned) { *ev = new Event{{}, false}; return SUCCESS; }
API CUresult cuEventRecord(void *ev, void *s) {
    {
        LOCK();
        if (recording(s)) return forbid("cuEventRecord on the capturing stream (event nodes are not emulated)");
    }
    ((Event *)ev)->t = std::chrono::steady_clock::now();
    ((Event *)ev)->recorded = true;
    return SUCCESS;
}
API CUresult cuEventSynchronize(void *) { LOCK(); return forbid("cuEventSynchronize"); }
API CUresult cuEventElapsedTime(float *ms, void *start, void *end) {
    Event *a = (Event *)start, *b = (Event *)end;
    if (!a->recorded || !b->recorded) return fail(INVALID_HANDLE, "elapsed time of an event never recorded");
    *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
    return SUCCESS;
}
API CUresult cuEventDestroy_v2(void *ev) { delete (Event *)ev; return SUCCESS; }

// --- stream capture and graphs ---

API CUresult cuStreamBeginCapture_v2(void *s, int mode) {
    LOCK();
    CONTEXT_OK();
    Stream *st = (Stream *)s;
    if (!st) return fail(NOT_SUPPORTED, "the legacy default stream cannot capture");
    if (mode < 0 || mode > 2) return fail(INVALID_VALUE, "capture mode " + std::to_string(mode));
    if (!(st->flags & 1)) return fail(NOT_SUPPORTED, "capture on a blocking stream (the emulator asks for CU_STREAM_NON_BLOCKING: a blocking one joins the legacy default stream)");
    if (capturing) return fail(NOT_SUPPORTED, "a second capture while one runs (the emulator captures one stream at a time)");
    capturing = st;
    captured = new Graph{};
    invalid.clear();
    captureThread = std::this_thread::get_id();
    captureRelaxed = mode == 2;
    return SUCCESS;
}

API CUresult cuStreamEndCapture(void *s, void **graph) {
    LOCK();
    *graph = nullptr;
    if (!capturing || (Stream *)s != capturing) return fail(ILLEGAL_STATE, "cuStreamEndCapture on a stream that is not capturing");
    if (!captureRelaxed && std::this_thread::get_id() != captureThread)
        return fail(STREAM_CAPTURE_WRONG_THREAD, "cuStreamEndCapture on another thread than cuStreamBeginCapture's (the capture goes on)");
    Graph *g = captured;
    capturing = nullptr;
    captured = nullptr;
    if (!invalid.empty()) {
        delete g;
        return fail(STREAM_CAPTURE_INVALIDATED, "the capture was invalidated by " + invalid);
    }
    *graph = g;
    return SUCCESS;
}

API CUresult cuGraphInstantiateWithFlags(void **exec, void *graph, unsigned long long flags) {
    LOCK();
    if (!graph) return fail(INVALID_VALUE, "cuGraphInstantiate of no graph");
    if (flags) return fail(INVALID_VALUE, "graph instantiation flags are not emulated");
    *exec = new Graph(*(Graph *)graph);
    return SUCCESS;
}
API CUresult cuGraphInstantiate_v2(void **exec, void *graph, void *, char *, size_t) { return cuGraphInstantiateWithFlags(exec, graph, 0); }

// cuGraphLaunch runs the record in order; a failing node loses the context, as a failed launch does.
API CUresult cuGraphLaunch(void *exec, void *s) {
    LOCK();
    CONTEXT_OK();
    if (!exec) return fail(INVALID_HANDLE, "cuGraphLaunch of no graph");
    if (recording(s)) return forbid("cuGraphLaunch into a capture (child graphs are not emulated)");
    Graph *g = (Graph *)exec;
    for (size_t i = 0; i < g->ops.size(); i++) {
        std::string err = g->ops[i]();
        if (!err.empty()) {
            sticky = LAUNCH_FAILED;
            return fail(LAUNCH_FAILED, "graph node " + std::to_string(i) + ": " + err);
        }
    }
    return SUCCESS;
}
API CUresult cuGraphExecDestroy(void *exec) { LOCK(); delete (Graph *)exec; return SUCCESS; }
API CUresult cuGraphDestroy(void *graph) { LOCK(); delete (Graph *)graph; return SUCCESS; }
