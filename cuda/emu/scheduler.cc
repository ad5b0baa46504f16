// The emulator's block scheduler: the threads of a block are fibers on the
// calling OS thread, switched by a few lines of assembly (swapcontext makes
// two system calls per switch, which made the emulated tests ten times
// slower). A fiber runs until it finishes or reaches a barrier; when every
// live thread of a warp waits at a warp barrier (shuffle, WMMA) the warp goes
// on, when every live thread of the block waits at __syncthreads the block
// goes on, and anything else is a deadlock the hardware would hang on or
// leave undefined, reported with the threads involved.
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime.h"

#if !defined(__x86_64__)
#error "the CUDA emulator's fiber switch is written for x86-64"
#endif

// emu_switch saves the callee-saved registers on the current stack, stores
// the stack pointer in *save and resumes the fiber whose saved stack pointer
// is to. The SSE and x87 control words are not switched: neither the kernels
// nor Go change them (saving them made a switch several times slower).
extern "C" void emu_switch(void **save, void *to);
asm(R"(
    .text
    .globl emu_switch
    .hidden emu_switch
    .type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch,.-emu_switch
)");

namespace emu {

Dim3 g_blockIdx, g_blockDim, g_gridDim;

namespace {

enum State { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };

struct Fiber {
    void *sp;
    Dim3 idx;
    unsigned lane, warp;
    State state;
    const char *waitingFor; // the warp operation it waits in
    unsigned bank;          // which half of the shuffle slots its next shuffle uses
};

constexpr size_t kStack = 256 << 10; // per fiber, reserved lazily
constexpr int kMaxThreads = 1024;

char *stacks;
Fiber fibers[kMaxThreads];
Fiber *current;
void *schedulerSP;
const KernelInfo *kernel;
void **params;
uint64_t slots[kMaxThreads / 32][2][32];
WarpScratch scratch[kMaxThreads / 32];
std::vector<unsigned char> shared;
std::string fault; // what device code found wrong in this launch
// RFNET_EMU_ORDER=reverse runs blocks, warps and the lanes of a warp last to
// first. A kernel whose result depends on that order between two barriers
// (a missing __syncthreads or __syncwarp, or blocks that read each other's
// output) then gives another answer than in the default order.
bool reversed;

// emu.h places __shared__ arrays in the section emu_shared (g++ leaves out
// those declared inside function templates, so kernels keep theirs in
// dynamic shared memory; the Makefile checks); the linker's bounds of that
// section let each block start with them poisoned, as the hardware's
// shared memory starts with garbage.
extern "C" char __start_emu_shared[] __attribute__((weak)), __stop_emu_shared[] __attribute__((weak));

[[noreturn]] void fiber_main() {
    kernel->invoke(kernel->fn, params);
    async_finish();
    current->state = DONE;
    emu_switch(&current->sp, schedulerSP);
    __builtin_unreachable();
}

void start_fiber(Fiber &f, int i) {
    // Stack tops at the same offset in every 256 KiB would share a few L1
    // sets; a different offset per fiber (a multiple of 16) spreads them.
    char *top = stacks + (size_t)(i + 1) * kStack - (size_t)(i * 208) % 4096;
    void **sp = (void **)top;
    *--sp = nullptr;              // fiber_main's return address (it never returns)
    *--sp = (void *)&fiber_main;  // where emu_switch's ret goes
    for (int r = 0; r < 6; r++) *--sp = nullptr; // rbp rbx r12 r13 r14 r15
    f.sp = sp;
    f.state = RUNNABLE;
    f.bank = 0;
    async_start((unsigned)i);
}

void yield(State s, const char *what) {
    current->state = s;
    current->waitingFor = what;
    emu_switch(&current->sp, schedulerSP);
}

std::string where(const Fiber &f) {
    char b[160];
    snprintf(b, sizeof b, "block (%u,%u,%u) thread (%u,%u,%u)", g_blockIdx.x, g_blockIdx.y, g_blockIdx.z, f.idx.x, f.idx.y, f.idx.z);
    return b;
}

// run_block runs one block's n threads to the end.
std::string run_block(int n) {
    for (int i = 0; i < n; i++) start_fiber(fibers[i], i);
    int warps = (n + 31) / 32;
    for (;;) {
        // Each warp runs until its live threads are all at __syncthreads or
        // done; a warp barrier releases as soon as the whole warp is there.
        for (int wi = 0; wi < warps; wi++) {
            int w = reversed ? warps - 1 - wi : wi;
            int lo = w * 32, hi = std::min(n, lo + 32);
            for (;;) {
                for (int k = lo; k < hi; k++) {
                    int i = reversed ? lo + hi - 1 - k : k;
                    if (fibers[i].state != RUNNABLE) continue;
                    current = &fibers[i];
                    emu_switch(&schedulerSP, fibers[i].sp);
                }
                int waiting = 0, live = 0;
                for (int i = lo; i < hi; i++) {
                    if (fibers[i].state != DONE) live++;
                    if (fibers[i].state == WAIT_WARP) waiting++;
                }
                if (live == 0 || waiting != live) break; // at __syncthreads, done, or deadlocked
                if (live != 32) {
                    for (int i = lo; i < hi; i++)
                        if (fibers[i].state == WAIT_WARP)
                            return std::string(fibers[i].waitingFor) + " in a warp of " + std::to_string(live) +
                                   " live threads (the hardware needs all 32): " + where(fibers[i]);
                }
                for (int i = lo; i < hi; i++) fibers[i].state = RUNNABLE;
            }
        }
        int done = 0, atBarrier = 0;
        for (int i = 0; i < n; i++) {
            if (fibers[i].state == DONE) done++;
            if (fibers[i].state == WAIT_BLOCK) atBarrier++;
        }
        if (done == n) return "";
        if (done + atBarrier == n) {
            for (int i = 0; i < n; i++)
                if (fibers[i].state == WAIT_BLOCK) fibers[i].state = RUNNABLE;
            continue;
        }
        // Deadlock: name one thread at each kind of wait.
        std::string msg = "deadlock: threads of one block wait at different barriers (divergent __syncthreads or warp operation):";
        for (int i = 0; i < n; i++)
            if (fibers[i].state == WAIT_WARP) { msg += " " + where(fibers[i]) + " in " + fibers[i].waitingFor + ";"; break; }
        for (int i = 0; i < n; i++)
            if (fibers[i].state == WAIT_BLOCK) { msg += " " + where(fibers[i]) + " in __syncthreads;"; break; }
        return msg;
    }
}

} // namespace

const Dim3 &thread_idx() { return current->idx; }
unsigned lane() { return current->lane; }
void sync_block() { yield(WAIT_BLOCK, "__syncthreads"); }
void sync_warp(const char *what) { yield(WAIT_WARP, what); }
void *dynamic_shared() { return shared.data(); }
bool in_shared(const void *p, size_t n) {
    auto inside = [&](const void *lo, const void *hi) { return p >= lo && (const char *)p + n <= (const char *)hi; };
    return inside(shared.data(), shared.data() + shared.size()) || (__start_emu_shared && inside(__start_emu_shared, __stop_emu_shared));
}
unsigned thread_linear() { return (unsigned)(current - fibers); }
void device_fault(const std::string &what) {
    if (fault.empty()) fault = what + " (" + where(*current) + ")";
}
// Shuffles alternate between two banks of slots: a lane cannot write a bank
// again before the whole warp has met once more, by which time every lane
// has read it, so one meeting per shuffle is enough.
WarpScratch &warp_scratch() { return scratch[current->warp]; }
uint64_t *warp_slots() {
    uint64_t *b = slots[current->warp][current->bank];
    current->bank ^= 1;
    return b;
}

std::string run_grid(const KernelInfo &k, void **p, Dim3 grid, Dim3 block, size_t dynamicShared) {
    if (!stacks) {
        stacks = (char *)mmap(nullptr, kStack * kMaxThreads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (stacks == MAP_FAILED) {
            stacks = nullptr;
            return "cannot reserve the fibers' stacks";
        }
    }
    int n = (int)(block.x * block.y * block.z);
    for (int i = 0; i < n; i++) {
        fibers[i].idx = Dim3{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
        fibers[i].lane = i % 32;
        fibers[i].warp = i / 32;
    }
    kernel = &k;
    params = p;
    fault.clear();
    g_blockDim = block;
    g_gridDim = grid;
    // Dynamic shared memory is garbage at the start of each block on the
    // hardware; NaN bytes here make a kernel that reads it unwritten fail.
    shared.resize(dynamicShared);
    const char *order = getenv("RFNET_EMU_ORDER");
    reversed = order && strcmp(order, "reverse") == 0;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                g_blockIdx = reversed ? Dim3{grid.x - 1 - x, grid.y - 1 - y, grid.z - 1 - z} : Dim3{x, y, z};
                std::fill(shared.begin(), shared.end(), 0xFF);
                if (__start_emu_shared) std::fill(__start_emu_shared, __stop_emu_shared, 0xFF);
                std::string err = run_block(n);
                if (err.empty() && !fault.empty()) err = fault;
                if (!err.empty()) return err;
            }
    return "";
}

} // namespace emu

// The alignment and leading-dimension rules of WMMA loads and stores.
namespace nvcuda {
namespace wmma {
void check_wmma_pointer(const void *p, unsigned ldm, size_t elem, const char *what) {
    if ((uintptr_t)p % 32 != 0 || (ldm * elem) % 16 != 0) {
        char b[200];
        snprintf(b, sizeof b, "%s: pointer %p or leading dimension %u not aligned as the hardware requires (misaligned address)", what, p, ldm);
        emu::device_fault(b);
    }
}
} // namespace wmma
} // namespace nvcuda
