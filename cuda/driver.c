//go:build cuda

#include "driver.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUdevice;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream, *CUevent;

static CUresult (*p_cuInit)(unsigned);
static CUresult (*p_cuDriverGetVersion)(int *);
static CUresult (*p_cuDeviceGetCount)(int *);
static CUresult (*p_cuDeviceGet)(CUdevice *, int);
static CUresult (*p_cuDeviceGetName)(char *, int, CUdevice);
static CUresult (*p_cuDeviceTotalMem)(size_t *, CUdevice);
static CUresult (*p_cuDeviceGetAttribute)(int *, int, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
static CUresult (*p_cuCtxSetCurrent)(CUcontext);
static CUresult (*p_cuCtxSynchronize)(void);
static CUresult (*p_cuStreamCreate)(CUstream *, unsigned);
static CUresult (*p_cuMemAlloc)(CUdeviceptr *, size_t);
static CUresult (*p_cuMemFree)(CUdeviceptr);
static CUresult (*p_cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
static CUresult (*p_cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
static CUresult (*p_cuMemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
static CUresult (*p_cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
static CUresult (*p_cuMemGetInfo)(size_t *, size_t *);
static CUresult (*p_cuModuleLoadData)(CUmodule *, const void *);
static CUresult (*p_cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
static CUresult (*p_cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **);
static CUresult (*p_cuFuncSetAttribute)(CUfunction, int, int);
static CUresult (*p_cuGetErrorString)(CUresult, const char **);
static CUresult (*p_cuEventCreate)(CUevent *, unsigned);
static CUresult (*p_cuEventRecord)(CUevent, CUstream);
static CUresult (*p_cuEventSynchronize)(CUevent);
static CUresult (*p_cuEventElapsedTime)(float *, CUevent, CUevent);
static CUresult (*p_cuEventDestroy)(CUevent);
// Graphs: optional (an old driver lacks them; then the backend runs eagerly).
typedef void *CUgraph, *CUgraphExec;
static CUresult (*p_cuStreamBeginCapture)(CUstream, int);
static CUresult (*p_cuStreamEndCapture)(CUstream, CUgraph *);
static CUresult (*p_cuGraphInstantiateWithFlags)(CUgraphExec *, CUgraph, unsigned long long);
static CUresult (*p_cuGraphInstantiate)(CUgraphExec *, CUgraph, void *, char *, size_t);
static CUresult (*p_cuGraphLaunch)(CUgraphExec, CUstream);
static CUresult (*p_cuGraphExecDestroy)(CUgraphExec);
static CUresult (*p_cuGraphDestroy)(CUgraph);

static CUcontext ctx;
static CUstream stream;
// cur is where stream operations go: stream, or capStream while a capture
// runs. Capture gets a non-blocking stream of its own: the capture of a
// blocking stream breaks on any use of the legacy default stream meanwhile
// (an implicit join), and the backend's stream stays blocking for the
// synchronous downloads (rf_memcpy_dtoh). Replays go on the backend's stream.
static CUstream capStream, cur;
static CUdevice device;

#define CURRENT() do { CUresult r_ = p_cuCtxSetCurrent(ctx); if (r_) return r_; } while (0)

static void *sym(void *lib, const char *name, int *missing) {
    void *p = dlsym(lib, name);
    if (!p) *missing = 1;
    return p;
}

int rf_open(int ordinal, char *err, size_t errlen) {
    // RFNET_LIBCUDA names the driver library to use instead: one outside the
    // loader's path, or the CPU emulator of cuda/emu.
    const char *path = getenv("RFNET_LIBCUDA");
    void *lib;
    if (path && *path) {
        lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
        if (!lib) {
            snprintf(err, errlen, "RFNET_LIBCUDA=%s cannot be loaded (%s)", path, dlerror());
            return -1;
        }
    } else {
        lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
        if (!lib) lib = dlopen("libcuda.so", RTLD_NOW | RTLD_GLOBAL);
        if (!lib) {
            snprintf(err, errlen, "no NVIDIA driver: libcuda.so.1 cannot be loaded (%s)", dlerror());
            return -1;
        }
    }
    int missing = 0;
#define LOAD(v, name) *(void **)(&v) = sym(lib, name, &missing)
    LOAD(p_cuInit, "cuInit");
    LOAD(p_cuDriverGetVersion, "cuDriverGetVersion");
    LOAD(p_cuDeviceGetCount, "cuDeviceGetCount");
    LOAD(p_cuDeviceGet, "cuDeviceGet");
    LOAD(p_cuDeviceGetName, "cuDeviceGetName");
    LOAD(p_cuDeviceTotalMem, "cuDeviceTotalMem_v2");
    LOAD(p_cuDeviceGetAttribute, "cuDeviceGetAttribute");
    LOAD(p_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    LOAD(p_cuCtxSetCurrent, "cuCtxSetCurrent");
    LOAD(p_cuCtxSynchronize, "cuCtxSynchronize");
    LOAD(p_cuStreamCreate, "cuStreamCreate");
    LOAD(p_cuMemAlloc, "cuMemAlloc_v2");
    LOAD(p_cuMemFree, "cuMemFree_v2");
    LOAD(p_cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    LOAD(p_cuMemcpyDtoH, "cuMemcpyDtoH_v2");
    LOAD(p_cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    LOAD(p_cuMemsetD8Async, "cuMemsetD8Async");
    LOAD(p_cuMemGetInfo, "cuMemGetInfo_v2");
    LOAD(p_cuModuleLoadData, "cuModuleLoadData");
    LOAD(p_cuModuleGetFunction, "cuModuleGetFunction");
    LOAD(p_cuLaunchKernel, "cuLaunchKernel");
    LOAD(p_cuFuncSetAttribute, "cuFuncSetAttribute");
    LOAD(p_cuGetErrorString, "cuGetErrorString");
    LOAD(p_cuEventCreate, "cuEventCreate");
    LOAD(p_cuEventRecord, "cuEventRecord");
    LOAD(p_cuEventSynchronize, "cuEventSynchronize");
    LOAD(p_cuEventElapsedTime, "cuEventElapsedTime");
    LOAD(p_cuEventDestroy, "cuEventDestroy_v2");
    int noGraphs = 0;
    *(void **)(&p_cuStreamBeginCapture) = sym(lib, "cuStreamBeginCapture_v2", &noGraphs);
    *(void **)(&p_cuStreamEndCapture) = sym(lib, "cuStreamEndCapture", &noGraphs);
    *(void **)(&p_cuGraphLaunch) = sym(lib, "cuGraphLaunch", &noGraphs);
    *(void **)(&p_cuGraphExecDestroy) = sym(lib, "cuGraphExecDestroy", &noGraphs);
    *(void **)(&p_cuGraphDestroy) = sym(lib, "cuGraphDestroy", &noGraphs);
    int noFlags = 0, noOld = 0;
    *(void **)(&p_cuGraphInstantiateWithFlags) = sym(lib, "cuGraphInstantiateWithFlags", &noFlags);
    *(void **)(&p_cuGraphInstantiate) = sym(lib, "cuGraphInstantiate_v2", &noOld);
    if (noGraphs || (noFlags && noOld)) p_cuStreamBeginCapture = NULL; // no graphs
#undef LOAD
    if (missing) {
        snprintf(err, errlen, "the NVIDIA driver's libcuda lacks functions this build needs (driver too old?)");
        return -1;
    }
    CUresult r = p_cuInit(0);
    if (r) {
        snprintf(err, errlen, "cuInit failed: %s (no GPU, or a driver stub)", rf_error_string(r));
        return r;
    }
    // Every failure names the call, so that the Go side's error says more
    // than a bare code (a busy GPU in exclusive mode fails the context).
#define TRY(call, what) do { if ((r = (call))) { snprintf(err, errlen, "%s failed: %s", what, rf_error_string(r)); return r; } } while (0)
    int count = 0;
    TRY(p_cuDeviceGetCount(&count), "cuDeviceGetCount");
    if (ordinal >= count) {
        snprintf(err, errlen, "no CUDA device %d (%d found)", ordinal, count);
        return -1;
    }
    TRY(p_cuDeviceGet(&device, ordinal), "cuDeviceGet");
    TRY(p_cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain");
    TRY(p_cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
    TRY(p_cuStreamCreate(&stream, 0), "cuStreamCreate");
    cur = stream;
#undef TRY
    return 0;
}

int rf_device_info(char *name, size_t namelen, size_t *total, int *major, int *minor, int *driver) {
    CURRENT();
    CUresult r;
    if ((r = p_cuDeviceGetName(name, (int)namelen, device))) return r;
    if ((r = p_cuDeviceTotalMem(total, device))) return r;
    if ((r = p_cuDeviceGetAttribute(major, 75, device))) return r; // COMPUTE_CAPABILITY_MAJOR
    if ((r = p_cuDeviceGetAttribute(minor, 76, device))) return r; // COMPUTE_CAPABILITY_MINOR
    return p_cuDriverGetVersion(driver);
}

const char *rf_error_string(CUresult r) {
    const char *s = NULL;
    if (p_cuGetErrorString && p_cuGetErrorString(r, &s) == 0 && s) return s;
    return "unknown CUDA error";
}

CUresult rf_mem_alloc(CUdeviceptr *p, size_t bytes) { CURRENT(); return p_cuMemAlloc(p, bytes); }
CUresult rf_mem_free(CUdeviceptr p) { CURRENT(); return p_cuMemFree(p); }
// Uploads go on the stream: from pageable memory (all of Go's) the driver
// copies src into a staging buffer before returning, so src may change at
// once, and unlike cuMemcpyHtoD it does not first wait for the stream (a
// timestep embedding uploaded per UNet call would otherwise drain the
// queue every step). The synchronous download orders with the stream: it is
// a blocking stream (created with flags 0), so the legacy default stream
// waits for it.
CUresult rf_memcpy_htod(CUdeviceptr dst, const void *src, size_t bytes) { CURRENT(); return p_cuMemcpyHtoDAsync(dst, src, bytes, cur); }
CUresult rf_memcpy_dtoh(void *dst, CUdeviceptr src, size_t bytes) { CURRENT(); return p_cuMemcpyDtoH(dst, src, bytes); }
CUresult rf_memcpy_dtod(CUdeviceptr dst, CUdeviceptr src, size_t bytes) { CURRENT(); return p_cuMemcpyDtoDAsync(dst, src, bytes, cur); }
CUresult rf_memset8(CUdeviceptr dst, unsigned char v, size_t bytes) { CURRENT(); return p_cuMemsetD8Async(dst, v, bytes, cur); }
CUresult rf_mem_info(size_t *free, size_t *total) { CURRENT(); return p_cuMemGetInfo(free, total); }
CUresult rf_sync(void) { CURRENT(); return p_cuCtxSynchronize(); }

CUresult rf_module_load(void **module, const void *image) { CURRENT(); return p_cuModuleLoadData((CUmodule *)module, image); }
CUresult rf_module_function(void **fn, void *module, const char *name) { CURRENT(); return p_cuModuleGetFunction((CUfunction *)fn, module, name); }

CUresult rf_launch(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned shmem, const void *args, const int *offs, int nargs) {
    CURRENT();
    void *params[32];
    if (nargs > 32) return 1; // CUDA_ERROR_INVALID_VALUE
    for (int i = 0; i < nargs; i++) params[i] = (char *)args + offs[i];
    return p_cuLaunchKernel(fn, gx, gy, gz, bx, by, bz, shmem, cur, params, NULL);
}

CUresult rf_set_max_shared(void *fn, int bytes) {
    CURRENT();
    return p_cuFuncSetAttribute(fn, 8, bytes); // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
}

CUresult rf_event_create(void **ev) { CURRENT(); return p_cuEventCreate((CUevent *)ev, 0); }
CUresult rf_event_record(void *ev) { CURRENT(); return p_cuEventRecord(ev, cur); }
CUresult rf_event_elapsed(float *ms, void *start, void *end) {
    CURRENT();
    CUresult r = p_cuEventSynchronize(end);
    if (r) return r;
    return p_cuEventElapsedTime(ms, start, end);
}
CUresult rf_event_destroy(void *ev) { CURRENT(); return p_cuEventDestroy(ev); }

// cuBLAS, through the v2 API symbols that every cuBLAS 11-13 exports.
typedef void *cublasHandle_t;
static int (*p_cublasCreate)(cublasHandle_t *);
static int (*p_cublasSetStream)(cublasHandle_t, CUstream);
static int (*p_cublasSetWorkspace)(cublasHandle_t, void *, size_t); // optional (cuBLAS 11.3+)
static int (*p_cublasGemmStridedBatchedEx)(cublasHandle_t, int, int, int, int, int, const void *, const void *, int, int, long long,
                                             const void *, int, int, long long, const void *, void *, int, int, long long, int,
                                             int, int);
static cublasHandle_t handle;

int rf_cublas_open(char *which, size_t whichlen) {
    const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"};
    int count = 4;
    // RFNET_LIBCUBLAS names the cuBLAS library to use instead, or "none" for
    // the built-in GEMM kernels.
    const char *path = getenv("RFNET_LIBCUBLAS");
    if (path && *path) {
        if (strcmp(path, "none") == 0) return -1;
        names[0] = path;
        count = 1;
    }
    for (int i = 0; i < count; i++) {
        void *lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
        if (!lib) continue;
        int missing = 0;
        *(void **)(&p_cublasCreate) = sym(lib, "cublasCreate_v2", &missing);
        *(void **)(&p_cublasSetStream) = sym(lib, "cublasSetStream_v2", &missing);
        *(void **)(&p_cublasGemmStridedBatchedEx) = sym(lib, "cublasGemmStridedBatchedEx", &missing);
        if (missing) continue;
        int noWorkspace = 0;
        *(void **)(&p_cublasSetWorkspace) = sym(lib, "cublasSetWorkspace_v2", &noWorkspace);
        if (p_cuCtxSetCurrent(ctx)) return -1;
        if (p_cublasCreate(&handle) || p_cublasSetStream(handle, stream)) continue;
        snprintf(which, whichlen, "%s", names[i]);
        return 0;
    }
    return -1;
}

int rf_gemm(int dtype, int transA, int transB, int M, int N, int K, CUdeviceptr A, CUdeviceptr B, CUdeviceptr C,
            long long strideA, long long strideB, long long strideC, int batch, int tf32, float alpha, float beta) {
    if (p_cuCtxSetCurrent(ctx)) return -1;
    // Float accumulation; TF32 tensor cores for float32 inputs only when asked
    // (CUBLAS_COMPUTE_32F_FAST_TF32 = 77, CUBLAS_COMPUTE_32F = 68).
    int compute = dtype == 0 && tf32 ? 77 : 68;
    // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ.
    int lda = transA ? M : K, ldb = transB ? K : N;
    return p_cublasGemmStridedBatchedEx(handle, transB ? 1 : 0, transA ? 1 : 0, N, M, K, &alpha,
                                        (const void *)B, dtype, ldb, strideB, (const void *)A, dtype, lda, strideA, &beta,
                                        (void *)C, dtype, N, strideC, batch,
                                        compute, -1 /* CUBLAS_GEMM_DEFAULT */);
}

// --- CUDA graphs ---

int rf_graphs_available(void) { return p_cuStreamBeginCapture != NULL; }

// bind_cublas points cuBLAS at s with the workspace ws. cublasSetStream
// resets the workspace to cuBLAS's own pool, so the workspace follows it.
static int bind_cublas(CUstream s, CUdeviceptr ws, size_t wsBytes) {
    if (!handle) return 0;
    if (p_cublasSetStream(handle, s)) return 1;
    if (ws && p_cublasSetWorkspace && p_cublasSetWorkspace(handle, (void *)ws, wsBytes)) return 1;
    return 0;
}

CUresult rf_capture_begin(CUdeviceptr ws, size_t wsBytes) {
    CURRENT();
    if (!p_cuStreamBeginCapture) return 801; // CUDA_ERROR_NOT_SUPPORTED
    if (handle && (!ws || !p_cublasSetWorkspace)) return 801; // cuBLAS would allocate its workspace inside
    CUresult r;
    if (!capStream && (r = p_cuStreamCreate(&capStream, 1))) return r; // CU_STREAM_NON_BLOCKING
    if (bind_cublas(capStream, ws, wsBytes)) return 1;
    if ((r = p_cuStreamBeginCapture(capStream, 0))) { // CU_STREAM_CAPTURE_MODE_GLOBAL
        bind_cublas(stream, ws, wsBytes);
        return r;
    }
    cur = capStream;
    return 0;
}

CUresult rf_capture_end(void **exec, CUdeviceptr ws, size_t wsBytes) {
    *exec = NULL;
    CURRENT();
    cur = stream;
    CUgraph graph = NULL;
    CUresult r = p_cuStreamEndCapture(capStream, &graph);
    if (bind_cublas(stream, ws, wsBytes) && !r) r = 1;
    if (r || !graph) {
        if (graph) p_cuGraphDestroy(graph);
        return r ? r : 1;
    }
    // The executable graph stands alone: the captured one goes at once.
    if (p_cuGraphInstantiateWithFlags) r = p_cuGraphInstantiateWithFlags(exec, graph, 0);
    else r = p_cuGraphInstantiate(exec, graph, NULL, NULL, 0);
    p_cuGraphDestroy(graph);
    if (r) *exec = NULL;
    return r;
}

CUresult rf_graph_launch(void *exec) { CURRENT(); return p_cuGraphLaunch(exec, stream); }
CUresult rf_graph_destroy(void *exec) { CURRENT(); return p_cuGraphExecDestroy(exec); }
