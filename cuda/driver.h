//go:build cuda

// The CUDA driver API and cuBLAS, loaded at run time with dlopen: the binary
// links neither libcuda nor libcublas, so it starts (and runs --device cpu) on
// machines without them, and works with whichever driver (CUDA 11-13) and
// cuBLAS (libcublas.so.11/12/13) a machine has. Every call first makes the
// backend's context current on the calling thread (goroutines move between
// threads).
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef int CUresult;
typedef uint64_t CUdeviceptr;

// rf_open loads libcuda, initializes it and opens device ordinal's primary
// context with one stream. On failure it returns a CUresult (or -1 when the
// library is missing) and writes a message into err.
int rf_open(int ordinal, char *err, size_t errlen);
// rf_device_info writes the device name, its total memory and compute capability.
int rf_device_info(char *name, size_t namelen, size_t *total, int *major, int *minor, int *driver);
const char *rf_error_string(CUresult r);

CUresult rf_mem_alloc(CUdeviceptr *p, size_t bytes);
CUresult rf_mem_free(CUdeviceptr p);
CUresult rf_memcpy_htod(CUdeviceptr dst, const void *src, size_t bytes);
CUresult rf_memcpy_dtoh(void *dst, CUdeviceptr src, size_t bytes);
CUresult rf_memcpy_dtod(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
CUresult rf_memset8(CUdeviceptr dst, unsigned char v, size_t bytes);
CUresult rf_mem_info(size_t *free, size_t *total);
CUresult rf_sync(void);

CUresult rf_module_load(void **module, const void *image);
CUresult rf_module_function(void **fn, void *module, const char *name);
// rf_launch launches fn on the stream; args is a block of argument values and
// offs their offsets in it (nargs of them).
CUresult rf_launch(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned shmem, const void *args, const int *offs, int nargs);
CUresult rf_set_max_shared(void *fn, int bytes);

// Events on the stream, for timing on the device.
CUresult rf_event_create(void **ev);
CUresult rf_event_record(void *ev);
// rf_event_elapsed waits for end and writes the milliseconds from start to end.
CUresult rf_event_elapsed(float *ms, void *start, void *end);
CUresult rf_event_destroy(void *ev);

// CUDA graphs (graph.go). rf_graphs_available reports whether the driver has
// the graph functions (CUDA 11.4+ for cuGraphInstantiateWithFlags; older ones
// fall back to cuGraphInstantiate_v2, and one lacking both has no graphs).
int rf_graphs_available(void);
// rf_capture_begin starts capturing on a second, non-blocking stream (made on
// first use) in global mode: from then on every rf_* stream operation, cuBLAS
// included, is recorded there instead of run, and a call that cannot be
// recorded (a host copy, a synchronization, an allocation) fails and
// invalidates the capture. cuBLAS is bound to that stream with the workspace
// ws of wsBytes (without one it could allocate inside the capture).
CUresult rf_capture_begin(CUdeviceptr ws, size_t wsBytes);
// rf_capture_end ends the capture (always, whatever went wrong inside it),
// puts the work back on the backend's stream and instantiates the record
// into *exec (NULL on failure).
CUresult rf_capture_end(void **exec, CUdeviceptr ws, size_t wsBytes);
// rf_graph_launch queues the instantiated graph on the backend's stream.
CUresult rf_graph_launch(void *exec);
CUresult rf_graph_destroy(void *exec);


// rf_cublas_open looks for libcublas.so.13, .12, .11, then libcublas.so (or
// loads $RFNET_LIBCUBLAS; "none" finds none);
// returns 0 and the version it found, or -1 when none loads.
int rf_cublas_open(char *which, size_t whichlen);
// rf_gemm is a row-major strided batched GEMM C = alpha·op(A)·op(B) + beta·C through
// cublasGemmStridedBatchedEx with float accumulation; dtype is the cudaDataType
// of A, B and C. Returns the cublasStatus_t.
int rf_gemm(int dtype, int transA, int transB, int M, int N, int K, CUdeviceptr A, CUdeviceptr B, CUdeviceptr C,
            long long strideA, long long strideB, long long strideC, int batch, int tf32, float alpha, float beta);
