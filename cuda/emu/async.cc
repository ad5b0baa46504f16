// The emulator's cp.async (kernels/mma.cuh's cp_async16, cp_async_commit,
// cp_async_wait): the hardware copies global → shared in the background and
// guarantees the bytes only once the issuing thread's cp.async.wait_group
// has retired their group, and to other threads only after a barrier after
// that. Here each thread queues its copies; the destination is poisoned (NaN
// bytes, as shared memory starts) when the copy is issued, and the bytes
// land when the thread waits for the group. So the emulator catches
//   - reading the destination before waiting for its group (NaN),
//   - reading another thread's copy before that thread waited and a
//     __syncthreads followed (NaN in one of the two thread orders),
//   - issuing a copy into a buffer other threads still read (a missing
//     __syncthreads before the next tile: their reads see NaN in one order),
//   - waiting for too few groups (wait_group N with N too large: the tile
//     is still poison),
//   - a destination outside shared memory, or either address not 16-byte
//     aligned (a device fault, like the hardware's misaligned address), and
//   - a thread that ends with copies it never waited for (a device fault).
// The source is read when the copy lands, not when it is issued; a kernel
// that writes the source in between is not caught.
#include <cstdio>
#include <cstring>
#include <vector>

#include "runtime.h"

namespace emu {

namespace {

struct Copy {
    void *dst;
    const void *src;
    bool valid;
};

// Per thread of the block: the copies since the last commit, then the
// committed groups, oldest first.
struct Queue {
    std::vector<Copy> open;
    std::vector<std::vector<Copy>> groups;
};

Queue queues[1024];

void land(const std::vector<Copy> &g) {
    for (const Copy &c : g) {
        if (c.valid) memcpy(c.dst, c.src, 16);
        else memset(c.dst, 0, 16);
    }
}

} // namespace

void async_copy(void *dst, const void *src, bool valid) {
    if (!in_shared(dst, 16)) {
        char b[160];
        snprintf(b, sizeof b, "cp.async: destination %p is not in this block's shared memory", dst);
        device_fault(b);
        return;
    }
    if ((uintptr_t)dst % 16 || (valid && (uintptr_t)src % 16)) {
        char b[160];
        snprintf(b, sizeof b, "cp.async: address %p or %p not 16-byte aligned (misaligned address)", dst, src);
        device_fault(b);
        return;
    }
    memset(dst, 0xFF, 16);
    queues[thread_linear()].open.push_back(Copy{dst, src, valid});
}

void async_commit() {
    Queue &q = queues[thread_linear()];
    q.groups.push_back(std::move(q.open));
    q.open.clear();
}

void async_wait(int pending) {
    Queue &q = queues[thread_linear()];
    size_t keep = pending < 0 ? 0 : (size_t)pending, done = 0;
    for (; q.groups.size() - done > keep; done++) land(q.groups[done]);
    q.groups.erase(q.groups.begin(), q.groups.begin() + done);
}

void async_start(unsigned thread) {
    queues[thread].open.clear();
    queues[thread].groups.clear();
}

void async_finish() {
    Queue &q = queues[thread_linear()];
    size_t n = q.open.size();
    for (auto &g : q.groups) n += g.size();
    if (n) device_fault("cp.async: the thread ended with " + std::to_string(n) + " copies it never waited for (cp.async.wait_group)");
}

} // namespace emu
