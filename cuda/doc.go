// Package cuda is the GPU backend: gorgonia.org/cu for the driver API, the
// kernels of kernels/ embedded as a fatbin, cuBLAS opened at run time. It builds
// only with the cuda build tag; without it, New reports that the binary has no
// CUDA support, so the rest of the tree builds and tests without a GPU.
package cuda
