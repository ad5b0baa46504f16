// The emulator's cuBLAS: the three functions cuda/driver.c loads, with
// cublasGemmStridedBatchedEx computed as the cuBLAS documentation defines it
// (column-major, op(A) m×k, leading dimensions, batch strides), so that the
// row-major-to-column-major mapping of cuda/driver.c is tested against the
// documented semantics, not against itself. Arguments are validated as cuBLAS
// does, and every operand's extent must lie in live device memory.
//
// A product on a capturing stream is recorded (driver.cc) and computed at
// each replay; it needs a workspace set with cublasSetWorkspace after the
// last cublasSetStream (which resets it, as cuBLAS documents), since cuBLAS
// would otherwise allocate one inside the capture.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#define API extern "C" __attribute__((visibility("default")))

namespace emu {
bool device_range(const void *p, size_t n);
bool capture_op(void *stream, std::function<std::string()> op);
bool stream_capturing(void *stream);
}

namespace {
enum { STATUS_SUCCESS = 0, STATUS_NOT_INITIALIZED = 1, STATUS_INVALID_VALUE = 7, STATUS_EXECUTION_FAILED = 13, STATUS_NOT_SUPPORTED = 15 };
enum { R_32F = 0, R_16F = 2, R_16BF = 14 };
enum { COMPUTE_32F = 68, COMPUTE_32F_FAST_TF32 = 77 };
int handleTag;
void *boundStream;  // cublasSetStream's
bool userWorkspace; // cublasSetWorkspace since the last cublasSetStream

void gemm(int transa, int transb, int m, int n, int k, float al, const void *A, int Atype, int lda, long long strideA, const void *B,
          int Btype, int ldb, long long strideB, float be, void *C, int Ctype, int ldc, long long strideC, int batch, int compute);

size_t elem_size(int t) { return t == R_32F ? 4 : 2; }

float load(const void *p, int t, int64_t i) {
    switch (t) {
    case R_32F: return ((const float *)p)[i];
    case R_16F: return __half2float(((const __half *)p)[i]);
    default: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    }
}

void store(void *p, int t, int64_t i, float v) {
    switch (t) {
    case R_32F: ((float *)p)[i] = v; break;
    case R_16F: ((__half *)p)[i] = __float2half_rn(v); break;
    default: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    }
}

// tf32 rounds to the 10-bit mantissa of TF32 (nearest, ties to even).
float tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0xfffu + ((u >> 13) & 1)) & ~0x1fffu;
    memcpy(&x, &u, 4);
    return x;
}

// extent_ok checks that a rows×cols column-major matrix with leading
// dimension ld, batch times at stride, lies in device memory.
bool extent_ok(const char *name, const void *p, int t, int rows, int cols, int ld, long long stride, int batch) {
    if (rows == 0 || cols == 0 || batch == 0) return true;
    size_t last = (size_t)(batch - 1) * (size_t)stride + (size_t)(cols - 1) * ld + rows; // elements
    if (emu::device_range(p, last * elem_size(t))) return true;
    fprintf(stderr, "cuBLAS emulator: operand %s (%d×%d, ld %d, stride %lld, batch %d) runs outside its device allocation\n", name, rows,
            cols, ld, stride, batch);
    return false;
}
} // namespace

API int cublasCreate_v2(void **handle) { *handle = &handleTag; return STATUS_SUCCESS; }
API int cublasSetStream_v2(void *handle, void *stream) {
    if (handle != &handleTag) return STATUS_NOT_INITIALIZED;
    boundStream = stream;
    userWorkspace = false;
    return STATUS_SUCCESS;
}
API int cublasSetWorkspace_v2(void *handle, void *ws, size_t bytes) {
    if (handle != &handleTag) return STATUS_NOT_INITIALIZED;
    if (bytes && !emu::device_range(ws, bytes)) {
        fprintf(stderr, "cuBLAS emulator: cublasSetWorkspace: %zu bytes at %p are not one live device allocation\n", bytes, ws);
        return STATUS_INVALID_VALUE;
    }
    userWorkspace = bytes > 0;
    return STATUS_SUCCESS;
}

// C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b], column-major; op(A) is m×k, op(B) k×n.
API int cublasGemmStridedBatchedEx(void *handle, int transa, int transb, int m, int n, int k, const void *alpha, const void *A,
                                   int Atype, int lda, long long strideA, const void *B, int Btype, int ldb, long long strideB,
                                   const void *beta, void *C, int Ctype, int ldc, long long strideC, int batch, int compute, int algo) {
    if (handle != &handleTag) return STATUS_NOT_INITIALIZED;
    auto bad = [](const std::string &why) {
        fprintf(stderr, "cuBLAS emulator: cublasGemmStridedBatchedEx: %s\n", why.c_str());
        return STATUS_INVALID_VALUE;
    };
    if (transa < 0 || transa > 1 || transb < 0 || transb > 1) return bad("transpose must be CUBLAS_OP_N or CUBLAS_OP_T");
    if (m < 0 || n < 0 || k < 0 || batch < 0) return bad("negative size");
    int aRows = transa ? k : m, aCols = transa ? m : k, bRows = transb ? n : k, bCols = transb ? k : n;
    if (lda < std::max(1, aRows)) return bad("lda " + std::to_string(lda) + " < rows of A " + std::to_string(aRows));
    if (ldb < std::max(1, bRows)) return bad("ldb " + std::to_string(ldb) + " < rows of B " + std::to_string(bRows));
    if (ldc < std::max(1, m)) return bad("ldc " + std::to_string(ldc) + " < m " + std::to_string(m));
    if (Atype != Btype || Atype != Ctype) return bad("mixed data types");
    if (Atype != R_32F && Atype != R_16F && Atype != R_16BF) return bad("data type " + std::to_string(Atype) + " not emulated");
    if (compute != COMPUTE_32F && compute != COMPUTE_32F_FAST_TF32) return bad("compute type " + std::to_string(compute) + " not emulated");
    if (compute == COMPUTE_32F_FAST_TF32 && Atype != R_32F) return bad("TF32 compute with 16-bit inputs");
    if (algo != -1 && algo != 99) return bad("algorithm " + std::to_string(algo) + " not emulated");
    if (!extent_ok("A", A, Atype, aRows, aCols, lda, strideA, batch) || !extent_ok("B", B, Btype, bRows, bCols, ldb, strideB, batch) ||
        !extent_ok("C", C, Ctype, m, n, ldc, strideC, batch))
        return STATUS_EXECUTION_FAILED;
    // Host pointer mode: alpha and beta are read at the call, so a graph keeps their values.
    float al = *(const float *)alpha, be = *(const float *)beta;
    auto product = [=]() -> std::string {
        if (!extent_ok("A", A, Atype, aRows, aCols, lda, strideA, batch) || !extent_ok("B", B, Btype, bRows, bCols, ldb, strideB, batch) ||
            !extent_ok("C", C, Ctype, m, n, ldc, strideC, batch))
            return "cublasGemmStridedBatchedEx: an operand is no longer live";
        gemm(transa, transb, m, n, k, al, A, Atype, lda, strideA, B, Btype, ldb, strideB, be, C, Ctype, ldc, strideC, batch, compute);
        return "";
    };
    if (emu::stream_capturing(boundStream)) {
        if (!userWorkspace) {
            fprintf(stderr, "cuBLAS emulator: a product on a capturing stream without cublasSetWorkspace (cuBLAS would allocate inside the capture)\n");
            return STATUS_NOT_SUPPORTED;
        }
        emu::capture_op(boundStream, product);
        return STATUS_SUCCESS;
    }
    product();
    return STATUS_SUCCESS;
}

namespace {
// gemm computes C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b] (arguments checked).
void gemm(int transa, int transb, int m, int n, int k, float al, const void *A, int Atype, int lda, long long strideA, const void *B,
          int Btype, int ldb, long long strideB, float be, void *C, int Ctype, int ldc, long long strideC, int batch, int compute) {
    bool round = compute == COMPUTE_32F_FAST_TF32;
    std::vector<float> acc(m);
    for (int b = 0; b < batch; b++) {
        const char *Ab = (const char *)A + b * strideA * (long long)elem_size(Atype);
        const char *Bb = (const char *)B + b * strideB * (long long)elem_size(Btype);
        char *Cb = (char *)C + b * strideC * (long long)elem_size(Ctype);
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < m; i++) acc[i] = 0.f;
            for (int l = 0; l < k; l++) {
                float bv = load(Bb, Btype, transb ? (int64_t)j + (int64_t)l * ldb : (int64_t)l + (int64_t)j * ldb);
                if (round) bv = tf32(bv);
                for (int i = 0; i < m; i++) {
                    float av = load(Ab, Atype, transa ? (int64_t)l + (int64_t)i * lda : (int64_t)i + (int64_t)l * lda);
                    if (round) av = tf32(av);
                    acc[i] += av * bv;
                }
            }
            for (int i = 0; i < m; i++) {
                int64_t at = (int64_t)i + (int64_t)j * ldc;
                // beta == 0: C is not read (it may hold NaN), as cuBLAS documents.
                store(Cb, Ctype, at, be == 0.f ? al * acc[i] : al * acc[i] + be * load(Cb, Ctype, at));
            }
        }
    }
}
} // namespace
