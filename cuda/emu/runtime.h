// Internal interface of the CUDA emulator: the kernel registry that the
// emulated kernel objects fill at load time, and the block scheduler that the
// fake driver calls to run a launch. See emu.h for what the emulator is for.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace emu {

// Invoker calls kernel fn with the argument values that params point to, as
// cuLaunchKernel's kernelParams.
using Invoker = void (*)(void *fn, void **params);

struct KernelInfo {
    const char *module; // the kernels/*.cu file it comes from
    const char *name;
    void *fn;
    Invoker invoke;
    std::vector<bool> pointer; // which parameters are pointers (checked at launch)
    std::vector<size_t> size;  // each parameter's size (a captured launch copies the values)
    int maxDynamicShared;      // cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)
};

void register_kernel(const KernelInfo &k);
std::vector<KernelInfo> &kernels();

// Registrar records a kernel from a static initializer (EMU_REGISTER in kernels/common.cuh).
struct Registrar {
    template <class... A> Registrar(const char *module, const char *name, void (*fn)(A...)) {
        register_kernel(KernelInfo{module, name, (void *)fn, &invoke<A...>, {std::is_pointer<A>::value...}, {sizeof(A)...}, 48 << 10});
    }
    template <class... A> static void invoke(void *fn, void **p) {
        call<A...>((void (*)(A...))fn, p, std::index_sequence_for<A...>{});
    }
    template <class... A, size_t... I> static void call(void (*fn)(A...), void **p, std::index_sequence<I...>) {
        fn(*(A *)p[I]...);
    }
};

struct Dim3 {
    unsigned x, y, z;
};

// run_grid runs every block of a launch, one after another; the threads of a
// block are fibers on the calling thread. It returns "" or what went wrong
// (a barrier deadlock, a warp operation on a partial warp), naming the block
// and thread.
// WarpScratch is a warp's scratch space for warp-collective operations:
// WMMA's fragment pointers and product; for mma.sync and ldmatrix
// (emu_mma.h) each lane's registers or row address, and the operation each
// lane is in (all 32 must be in the same one).
struct WarpScratch {
    const void *ptr[3];
    float out[256];
    uint64_t lanes[32][6];
    const char *op[32];
};

// device_fault records the first error device code finds (the launch fails).
void device_fault(const std::string &what);

// in_shared: whether [p, p+n) lies inside the running block's shared memory
// (dynamic, or the static __shared__ section).
bool in_shared(const void *p, size_t n);
// thread_linear: the running thread's index in its block.
unsigned thread_linear();

// cp.async (async.cc): copies queue per thread and land at cp.async.wait_group;
// async_start (a thread starts) drops what a previous block left, async_finish
// (it ends) faults on copies never waited for.
void async_copy(void *dst, const void *src, bool valid);
void async_commit();
void async_wait(int pending);
void async_start(unsigned thread);
void async_finish();

// Stream capture (driver.cc): capture_op records op, to run at each replay of
// the graph, when stream is capturing, and reports whether it did (the
// cuBLAS emulation records its products this way). An op returns "" or what
// went wrong. It takes the driver's lock: call it without holding it.
bool capture_op(void *stream, std::function<std::string()> op);
bool stream_capturing(void *stream);

std::string run_grid(const KernelInfo &k, void **params, Dim3 grid, Dim3 block, size_t dynamicShared);

} // namespace emu
