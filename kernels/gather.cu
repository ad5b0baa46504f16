// Embedding lookup: rows of a table by int32 id, one thread per output
// element. CPU reference: cpu/gather.go.
#include "common.cuh"

// gather: rows ids[i] of table [rows, dim]; an id out of range writes zeros
// and sets *bad (the launcher reports it).
template <typename T> __device__ void gather_impl(T *y, const T *table, const int32_t *ids, int64_t n, int64_t dim, int64_t rows, int32_t *bad) {
    FOR_EACH(i, n * dim) {
        int32_t id = ids[i / dim];
        if (id < 0 || id >= rows) {
            *bad = 1;
            y[i] = from_f<T>(0.f);
        } else {
            y[i] = table[(int64_t)id * dim + i % dim];
        }
    }
}
KERNEL3(gather, (void *y, const void *table, const int32_t *ids, int64_t n, int64_t dim, int64_t rows, int32_t *bad),
        ((T *)y, (const T *)table, ids, n, dim, rows, bad))
