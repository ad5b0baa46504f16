// The emulator's mma.sync, ldmatrix and cp.async: the functions of
// kernels/mma.cuh, with the per-lane fragment layouts of the PTX ISA
// ("Matrix fragments for mma.m16n8k16 with floating point type",
// "ldmatrix"). Each lane keeps only its own registers, as on the hardware,
// so a kernel that puts an element in the wrong lane or register computes a
// wrong result here too. The warp-collective ones publish every lane's
// registers (or row address) in the warp's scratch, meet the warp, check
// that all 32 lanes are in the same operation (the scheduler already faults
// on a warp with exited lanes), compute each lane's share, and meet again
// before the scratch can be reused. cp.async lives in async.cc.
#pragma once

namespace emu {

// warp_op publishes this lane's words under op, meets the warp and faults
// when a lane is in another warp operation; it returns the warp's scratch.
inline WarpScratch &warp_op(const char *op, const uint64_t *words, int n) {
    WarpScratch &w = warp_scratch();
    unsigned l = lane();
    for (int i = 0; i < n; i++) w.lanes[l][i] = words[i];
    w.op[l] = op;
    sync_warp(op);
    for (int i = 0; i < 32; i++)
        if (!w.op[i] || strcmp(w.op[i], op) != 0) {
            char b[200]; // snprintf, not std::to_string: its static table would escape the poisoned shared section check
            snprintf(b, sizeof b, "%s: lane %d is in %s (the lanes of a warp diverged)", op, i, w.op[i] ? w.op[i] : "another warp operation");
            device_fault(b);
            break;
        }
    return w;
}

// warp_op_end meets the warp again (every lane has read the scratch) and
// clears this lane's operation, so a later divergence cannot match it.
inline void warp_op_end(WarpScratch &w, const char *op) {
    sync_warp(op);
    w.op[lane()] = nullptr;
}

inline float h16_to_f(uint16_t bits, bool bf) {
    if (bf) {
        uint32_t u = (uint32_t)bits << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    __half h;
    memcpy((void *)&h, &bits, 2);
    return __half2float(h);
}

// mma_m16n8k16 for 16-bit inputs: element (row, k) of A sits in lane
// (row%8)·4 + (k%8)/2, register (row ≥ 8) + 2·(k ≥ 8), half k%2; element
// (k, col) of B in lane col·4 + (k%8)/2, register (k ≥ 8), half k%2; this
// lane's outputs are rows g and g+8, columns 2t and 2t+1.
inline void mma_16bit(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4], bool bf) {
    uint64_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
    WarpScratch &w = warp_op("mma.sync.m16n8k16", mine, 6);
    auto elem = [&](unsigned ln, int reg, int half) { return h16_to_f((uint16_t)(w.lanes[ln][reg] >> (16 * half)), bf); };
    unsigned g = lane() >> 2, t = lane() & 3;
    float r[4];
    for (int i = 0; i < 4; i++) {
        unsigned row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
        float s = c[i];
        for (unsigned k = 0; k < 16; k++) {
            float av = elem((row % 8) * 4 + (k % 8) / 2, (row >= 8) + 2 * (k >= 8), k % 2);
            float bv = elem(col * 4 + (k % 8) / 2, 4 + (k >= 8), k % 2);
            s += av * bv;
        }
        r[i] = s;
    }
    warp_op_end(w, "mma.sync.m16n8k16");
    for (int i = 0; i < 4; i++) d[i] = r[i];
}

// ldmatrix of n 8×8 matrices: lanes 8i..8i+7 give matrix i's row addresses
// (16-byte aligned, in shared memory); register i of lane l is row l/4,
// elements 2(l%4) and 2(l%4)+1 of matrix i, or with trans column l/4, rows
// 2(l%4) and 2(l%4)+1.
template <int n> inline void ldmatrix(uint32_t (&r)[n], const void *p, bool trans) {
    static_assert(n == 1 || n == 2 || n == 4, "ldmatrix loads 1, 2 or 4 matrices");
    const char *op = trans ? "ldmatrix.trans" : "ldmatrix";
    uint64_t mine = (uint64_t)(uintptr_t)p;
    WarpScratch &w = warp_op(op, &mine, 1);
    unsigned l = lane();
    if (l < 8 * n && ((uintptr_t)p % 16 || !in_shared(p, 16))) {
        char b[160];
        snprintf(b, sizeof b, "%s: row address %p not 16-byte aligned or not in shared memory", op, p);
        device_fault(b);
    }
    uint32_t got[4] = {};
    for (int i = 0; i < n; i++) {
        const char *base = (const char *)(uintptr_t)w.lanes[8 * i + l / 4][0];
        if (!trans) {
            if (!((uintptr_t)(base) % 16) && in_shared(base, 16)) memcpy(&got[i], base + 4 * (l % 4), 4);
            continue;
        }
        for (int j = 0; j < 2; j++) {
            const char *row = (const char *)(uintptr_t)w.lanes[8 * i + 2 * (l % 4) + j][0];
            uint16_t e = 0;
            if (!((uintptr_t)(row) % 16) && in_shared(row, 16)) memcpy(&e, row + 2 * (l / 4), 2);
            got[i] |= (uint32_t)e << (16 * j);
        }
    }
    warp_op_end(w, op);
    for (int i = 0; i < n; i++) r[i] = got[i];
}

} // namespace emu

template <typename T> inline void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
    static_assert(std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value, "mma_m16n8k16 takes f16 or bf16");
    emu::mma_16bit(d, a, b, c, std::is_same<T, __nv_bfloat16>::value);
}
inline void ldmatrix_x1(uint32_t (&r)[1], const void *p) { emu::ldmatrix<1>(r, p, false); }
inline void ldmatrix_x2(uint32_t (&r)[2], const void *p) { emu::ldmatrix<2>(r, p, false); }
inline void ldmatrix_x4(uint32_t (&r)[4], const void *p) { emu::ldmatrix<4>(r, p, false); }
inline void ldmatrix_x1_trans(uint32_t (&r)[1], const void *p) { emu::ldmatrix<1>(r, p, true); }
inline void ldmatrix_x2_trans(uint32_t (&r)[2], const void *p) { emu::ldmatrix<2>(r, p, true); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void *p) { emu::ldmatrix<4>(r, p, true); }
inline void cp_async16(void *dst, const void *src, bool valid) { emu::async_copy(dst, src, valid); }
inline void cp_async_commit() { emu::async_commit(); }
template <int N> inline void cp_async_wait() { emu::async_wait(N); }
