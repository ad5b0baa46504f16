// Elementwise kernels: unary activations and their derivatives, a·x+b,
// binary ops with broadcasting, GEGLU, dtype conversion. One thread per
// element (grid-stride). CPU references: cpu/elementwise.go, cpu/geglu.go,
// cpu/memory.go.
#include "common.cuh"

__device__ __forceinline__ float sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }
__device__ __forceinline__ float geluf(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float gelu_deriv(float x) {
    return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * expf(-0.5f * x * x) * 0.39894228040143268f;
}

__device__ __forceinline__ float unary_op(int op, float x) {
    switch (op) {
    case OP_SILU: return x * sigmoidf(x);
    case OP_GELU: return geluf(x);
    case OP_QUICK_GELU: return x * sigmoidf(1.702f * x);
    case OP_SIGMOID: return sigmoidf(x);
    case OP_EXP: return expf(x);
    case OP_ABS: return fabsf(x);
    case OP_SQUARE: return x * x;
    default: return sqrtf(x);
    }
}

__device__ __forceinline__ float unary_deriv(int op, float x) {
    switch (op) {
    case OP_SILU: { float s = sigmoidf(x); return s * (1.f + x * (1.f - s)); }
    case OP_GELU: return gelu_deriv(x);
    case OP_QUICK_GELU: { float s = sigmoidf(1.702f * x); return s + 1.702f * x * s * (1.f - s); }
    case OP_SIGMOID: { float s = sigmoidf(x); return s * (1.f - s); }
    case OP_EXP: return expf(x);
    case OP_ABS: return x > 0.f ? 1.f : (x < 0.f ? -1.f : 0.f);
    case OP_SQUARE: return 2.f * x;
    default: return 0.5f / sqrtf(x);
    }
}

template <typename T> __device__ void unary_impl(int op, T *y, const T *x, int64_t n) {
    FOR_EACH(i, n) y[i] = from_f<T>(unary_op(op, to_f(x[i])));
}
KERNEL3(unary, (int op, void *y, const void *x, int64_t n), (op, (T *)y, (const T *)x, n))

template <typename T> __device__ void unary_bwd_impl(int op, T *dx, const T *x, const T *dy, int64_t n) {
    FOR_EACH(i, n) dx[i] = from_f<T>(to_f(dy[i]) * unary_deriv(op, to_f(x[i])));
}
KERNEL3(unary_bwd, (int op, void *dx, const void *x, const void *dy, int64_t n), (op, (T *)dx, (const T *)x, (const T *)dy, n))

template <typename T> __device__ void affine_impl(T *y, const T *x, float a, float b, int64_t n) {
    FOR_EACH(i, n) y[i] = from_f<T>(a * to_f(x[i]) + b);
}
KERNEL3(affine, (void *y, const void *x, float a, float b, int64_t n), ((T *)y, (const T *)x, a, b, n))

// Broadcast describes the output shape (rank <= 6, each axis as a Divisor)
// and each operand's strides, 0 on broadcast axes, as tensor.Broadcast.
struct Broadcast {
    int rank;
    Divisor shape[6];
    int64_t sa[6], sb[6];
};

// binary_offsets maps output index i to the operands' offsets; the
// outermost axis needs no division.
__device__ __forceinline__ void binary_offsets(int64_t i, const Broadcast &bc, int64_t *ia, int64_t *ib) {
    int64_t rem = i, a = 0, b = 0;
    for (int ax = bc.rank - 1; ax > 0; ax--) {
        int64_t q = quot(rem, bc.shape[ax]), c = rem - q * bc.shape[ax].d;
        rem = q;
        a += c * bc.sa[ax];
        b += c * bc.sb[ax];
    }
    *ia = a + rem * bc.sa[0];
    *ib = b + rem * bc.sb[0];
}

template <typename T> __device__ void binary_impl(int op, T *out, const T *a, const T *b, int64_t n, Broadcast bc) {
    FOR_EACH(i, n) {
        int64_t ia, ib;
        binary_offsets(i, bc, &ia, &ib);
        float x = to_f(a[ia]), y = to_f(b[ib]), r;
        switch (op) {
        case OP_ADD: r = x + y; break;
        case OP_SUB: r = x - y; break;
        case OP_MUL: r = x * y; break;
        default: r = x / y;
        }
        out[i] = from_f<T>(r);
    }
}
KERNEL3(binary, (int op, void *out, const void *a, const void *b, int64_t n, Broadcast bc),
        (op, (T *)out, (const T *)a, (const T *)b, n, bc))

// GEGLU: each row of x [rows, 2·cols.d] is [h | g]; y = h·GELU(g).
template <typename T> __device__ void geglu_impl(T *y, const T *x, int64_t rows, Divisor cols) {
    int64_t w = cols.d;
    FOR_EACH(i, rows * w) {
        int64_t r = quot(i, cols), c = i - r * w;
        float h = to_f(x[2 * r * w + c]), g = to_f(x[(2 * r + 1) * w + c]);
        y[i] = from_f<T>(h * geluf(g));
    }
}
KERNEL3(geglu, (void *y, const void *x, int64_t rows, Divisor cols), ((T *)y, (const T *)x, rows, cols))

template <typename T> __device__ void geglu_bwd_impl(T *dx, const T *x, const T *dy, int64_t rows, Divisor cols) {
    int64_t w = cols.d;
    FOR_EACH(i, rows * w) {
        int64_t r = quot(i, cols), c = i - r * w;
        float h = to_f(x[2 * r * w + c]), g = to_f(x[(2 * r + 1) * w + c]), d = to_f(dy[i]);
        dx[2 * r * w + c] = from_f<T>(d * geluf(g));
        dx[(2 * r + 1) * w + c] = from_f<T>(d * h * gelu_deriv(g));
    }
}
KERNEL3(geglu_bwd, (void *dx, const void *x, const void *dy, int64_t rows, Divisor cols),
        ((T *)dx, (const T *)x, (const T *)dy, rows, cols))

// Conversions between the element types (round to nearest even).
template <typename S, typename D> __device__ void convert_impl(D *y, const S *x, int64_t n) {
    FOR_EACH(i, n) y[i] = from_f<D>(to_f(x[i]));
}
#define CONVERT(sname, S, dname, D) \
    extern "C" __global__ void convert_##sname##_##dname(void *y, const void *x, int64_t n) { convert_impl<S, D>((D *)y, (const S *)x, n); } \
    EMU_REGISTER(convert_##sname##_##dname)
CONVERT(f32, float, f16, f16)
CONVERT(f32, float, bf16, bf16)
CONVERT(f16, f16, f32, float)
CONVERT(bf16, bf16, f32, float)
CONVERT(f16, f16, bf16, bf16)
CONVERT(bf16, bf16, f16, f16)
