// Package cuda is the GPU backend: the kernels of kernels/, embedded as one
// fatbin per file, launched through the CUDA driver API, and cuBLAS for the
// matrix products when a libcublas loads (else the built-in GEMM kernels).
//
// Both libraries are opened at run time by the package's own small dlopen
// layer (driver.c, driver.h), not linked. gorgonia.org/cu, the Go binding of
// the driver API, was not usable for this: its package init panics when no
// driver answers, and it links libcuda at load time, so a binary built with
// it could not even start on a machine without a GPU, where this one runs
// --device cpu. The same layer lets the tests swap in the CPU emulator of
// cuda/emu for the driver (RFNET_LIBCUDA, RFNET_LIBCUBLAS).
//
// A call whose work is only device work can be captured once as a CUDA
// graph and replayed (graph.go: the denoising loop's UNet call), where the
// driver has the graph functions; elsewhere the same calls launch eagerly.
//
// It builds only with the cuda build tag; without it, New reports that the
// binary has no CUDA support, so the rest of the tree builds and tests without
// a GPU.
package cuda
