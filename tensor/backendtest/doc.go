// Package backendtest is the conformance suite every tensor.Backend runs: forward
// results against plain float64 references written here, gradients against
// central finite differences, and the benchmarks. Backends reach it from a one-line
// test (backendtest.RunAll) in their own package.
//
// An op's forward check, its reference and its benchmark sit in the file named
// as the op's kernel, launcher and CPU loops are (softmax.go beside
// kernels/softmax.cu, cuda/softmax.go and cpu/softmax.go; tensor.Backend lists
// the names). The gradient cases stay in one table (grad_cases.go), which the
// finite-difference check and the device parity runner both walk.
//
// It also holds the test helpers the rest of the tree shares: one seeded random
// fill (Randn) and one closeness check (AssertClose).
package backendtest
