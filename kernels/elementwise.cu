// Elementwise kernels: unary activations and their derivatives, a·x+b,
// binary ops with broadcasting, GEGLU and its backward. Grid-stride; each
// thread moves a Vec (16 bytes) at a time where the pointers and the layout
// allow it (the launchers size the grid for that), else one element. CPU
// reference: cpu/elementwise.go.
#include "common.cuh"

__device__ __forceinline__ float geluf(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float gelu_deriv(float x) {
    return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * expf(-0.5f * x * x) * 0.39894228040143268f;
}

__device__ __forceinline__ float unary_op(int op, float x) {
    switch (op) {
    case OP_SILU: return siluf(x);
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
    case OP_SILU: return silu_deriv(x);
    case OP_GELU: return gelu_deriv(x);
    case OP_QUICK_GELU: { float s = sigmoidf(1.702f * x); return s + 1.702f * x * s * (1.f - s); }
    case OP_SIGMOID: { float s = sigmoidf(x); return s * (1.f - s); }
    case OP_EXP: return expf(x);
    case OP_ABS: return x > 0.f ? 1.f : (x < 0.f ? -1.f : 0.f);
    case OP_SQUARE: return 2.f * x;
    default: return 0.5f / sqrtf(x);
    }
}

// map1: y[i] = f(x[i]) over n elements, a Vec per thread when both pointers
// are aligned (then the last n mod N elements one by one).
template <typename T, typename F> __device__ __forceinline__ void map1(T *y, const T *x, int64_t n, F f) {
    constexpr int N = VEC(T);
    if (vec_aligned<T, N>(y) && vec_aligned<T, N>(x)) {
        FOR_EACH(k, n / N) {
            Vec<T, N> v = load_vec<N>(x + k * N);
#pragma unroll
            for (int j = 0; j < N; j++) v.v[j] = from_f<T>(f(to_f(v.v[j])));
            store_vec<N>(y + k * N, v);
        }
        int64_t done = n / N * N;
        FOR_EACH(i, n - done) y[done + i] = from_f<T>(f(to_f(x[done + i])));
        return;
    }
    FOR_EACH(i, n) y[i] = from_f<T>(f(to_f(x[i])));
}

// map2: y[i] = f(x[i], z[i]), as map1.
template <typename T, typename F> __device__ __forceinline__ void map2(T *y, const T *x, const T *z, int64_t n, F f) {
    constexpr int N = VEC(T);
    if (vec_aligned<T, N>(y) && vec_aligned<T, N>(x) && vec_aligned<T, N>(z)) {
        FOR_EACH(k, n / N) {
            Vec<T, N> v = load_vec<N>(x + k * N), w = load_vec<N>(z + k * N);
#pragma unroll
            for (int j = 0; j < N; j++) v.v[j] = from_f<T>(f(to_f(v.v[j]), to_f(w.v[j])));
            store_vec<N>(y + k * N, v);
        }
        int64_t done = n / N * N;
        FOR_EACH(i, n - done) y[done + i] = from_f<T>(f(to_f(x[done + i]), to_f(z[done + i])));
        return;
    }
    FOR_EACH(i, n) y[i] = from_f<T>(f(to_f(x[i]), to_f(z[i])));
}

template <typename T> __device__ void unary_impl(int op, T *y, const T *x, int64_t n) {
    map1(y, x, n, [op](float v) { return unary_op(op, v); });
}
KERNEL3(unary, (int op, void *y, const void *x, int64_t n), (op, (T *)y, (const T *)x, n))

template <typename T> __device__ void unary_bwd_impl(int op, T *dx, const T *x, const T *dy, int64_t n) {
    map2(dx, x, dy, n, [op](float v, float g) { return g * unary_deriv(op, v); });
}
KERNEL3(unary_bwd, (int op, void *dx, const void *x, const void *dy, int64_t n), (op, (T *)dx, (const T *)x, (const T *)dy, n))

template <typename T> __device__ void affine_impl(T *y, const T *x, float a, float b, int64_t n) {
    map1(y, x, n, [a, b](float v) { return a * v + b; });
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

__device__ __forceinline__ float binary_op(int op, float x, float y) {
    switch (op) {
    case OP_ADD: return x + y;
    case OP_SUB: return x - y;
    case OP_MUL: return x * y;
    default: return x / y;
    }
}

template <typename T> __device__ void binary_impl(int op, T *out, const T *a, const T *b, int64_t n, Broadcast bc) {
    FOR_EACH(i, n) {
        int64_t ia, ib;
        binary_offsets(i, bc, &ia, &ib);
        out[i] = from_f<T>(binary_op(op, to_f(a[ia]), to_f(b[ib])));
    }
}
KERNEL3(binary, (int op, void *out, const void *a, const void *b, int64_t n, Broadcast bc),
        (op, (T *)out, (const T *)a, (const T *)b, n, bc))

// binary_vec: binary by groups of N = VEC(T) outputs along the last axis,
// whose length is a multiple of N. An operand with stride 1 there is read as
// a Vec, one with stride 0 (a per-channel bias, the time embedding) as one
// element for the group. The launcher (cuda/elementwise.go) checks that the
// layout and the pointers allow it: the residual adds and the broadcasts of
// the UNet do.
template <typename T> __device__ void binary_vec_impl(int op, T *out, const T *a, const T *b, int64_t n, Broadcast bc) {
    constexpr int N = VEC(T);
    bool va = bc.sa[bc.rank - 1] == 1, vb = bc.sb[bc.rank - 1] == 1;
    FOR_EACH(k, n / N) {
        int64_t ia, ib;
        binary_offsets(k * N, bc, &ia, &ib);
        Vec<T, N> x, y;
        if (va) x = load_vec<N>(a + ia);
        else
            for (int j = 0; j < N; j++) x.v[j] = a[ia];
        if (vb) y = load_vec<N>(b + ib);
        else
            for (int j = 0; j < N; j++) y.v[j] = b[ib];
#pragma unroll
        for (int j = 0; j < N; j++) x.v[j] = from_f<T>(binary_op(op, to_f(x.v[j]), to_f(y.v[j])));
        store_vec<N>(out + k * N, x);
    }
}
KERNEL3(binary_vec, (int op, void *out, const void *a, const void *b, int64_t n, Broadcast bc),
        (op, (T *)out, (const T *)a, (const T *)b, n, bc))

// GEGLU: each row of x [rows, 2·cols.d] plus bias [2·cols.d] (null: none)
// is [h | g]; y = h·GELU(g). The sum is rounded to T, as the add it replaces
// rounded it (tensor.GEGLUBias). unit is 1, or VEC(T) when the launcher
// (cuda/elementwise.go) found the width a whole number of Vecs: a thread
// then takes a Vec of a row.
template <typename T> __device__ __forceinline__ float biased(T v, const T *bias, int64_t i) {
    return bias ? to_f(from_f<T>(to_f(v) + to_f(bias[i]))) : to_f(v);
}
template <typename T> __device__ void geglu_impl(T *y, const T *x, const T *bias, int64_t rows, Divisor cols, int unit) {
    constexpr int N = VEC(T);
    int64_t w = cols.d;
    if (unit == N) {
        FOR_EACH(k, rows * w / N) {
            int64_t i = k * N, r = quot(i, cols), c = i - r * w;
            Vec<T, N> h = load_vec<N>(x + 2 * r * w + c), g = load_vec<N>(x + (2 * r + 1) * w + c);
            if (bias) {
                Vec<T, N> bh = load_vec<N>(bias + c), bg = load_vec<N>(bias + w + c);
#pragma unroll
                for (int j = 0; j < N; j++) {
                    h.v[j] = from_f<T>(to_f(h.v[j]) + to_f(bh.v[j]));
                    g.v[j] = from_f<T>(to_f(g.v[j]) + to_f(bg.v[j]));
                }
            }
#pragma unroll
            for (int j = 0; j < N; j++) h.v[j] = from_f<T>(to_f(h.v[j]) * geluf(to_f(g.v[j])));
            store_vec<N>(y + i, h);
        }
        return;
    }
    FOR_EACH(i, rows * w) {
        int64_t r = quot(i, cols), c = i - r * w;
        float h = biased(x[2 * r * w + c], bias, c), g = biased(x[(2 * r + 1) * w + c], bias, w + c);
        y[i] = from_f<T>(h * geluf(g));
    }
}
KERNEL3(geglu, (void *y, const void *x, const void *bias, int64_t rows, Divisor cols, int unit),
        ((T *)y, (const T *)x, (const T *)bias, rows, cols, unit))

template <typename T> __device__ void geglu_bwd_impl(T *dx, const T *x, const T *bias, const T *dy, int64_t rows, Divisor cols) {
    int64_t w = cols.d;
    FOR_EACH(i, rows * w) {
        int64_t r = quot(i, cols), c = i - r * w;
        float h = biased(x[2 * r * w + c], bias, c), g = biased(x[(2 * r + 1) * w + c], bias, w + c), d = to_f(dy[i]);
        dx[2 * r * w + c] = from_f<T>(d * geluf(g));
        dx[(2 * r + 1) * w + c] = from_f<T>(d * h * gelu_deriv(g));
    }
}
KERNEL3(geglu_bwd, (void *dx, const void *x, const void *bias, const void *dy, int64_t rows, Divisor cols),
        ((T *)dx, (const T *)x, (const T *)bias, (const T *)dy, rows, cols))
