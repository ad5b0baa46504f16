// Dtype conversion on the device, for Convert and FromRaw (cuda/memory.go):
// between float, f16 and bf16, rounding to nearest even, 8 elements per
// thread where aligned (16 bytes of the 16-bit side, 32 of float's). CPU
// reference: cpu/memory.go.
#include "common.cuh"

template <typename S, typename D> __device__ void convert_impl(D *y, const S *x, int64_t n) {
    constexpr int N = 8;
    int64_t done = 0;
    if (vec_aligned<D, N>(y) && vec_aligned<S, N>(x)) {
        FOR_EACH(k, n / N) {
            Vec<S, N> v = load_vec<N>(x + k * N);
            Vec<D, N> w;
#pragma unroll
            for (int j = 0; j < N; j++) w.v[j] = from_f<D>(to_f(v.v[j]));
            store_vec<N>(y + k * N, w);
        }
        done = n / N * N;
    }
    FOR_EACH(i, n - done) y[done + i] = from_f<D>(to_f(x[done + i]));
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
