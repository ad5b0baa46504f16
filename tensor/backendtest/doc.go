// Package backendtest is the conformance suite every tensor.Backend runs: forward
// results against plain float64 references written here, gradients against
// central finite differences, and the benchmarks. Backends reach it from a one-line
// test (backendtest.RunAll) in their own package.
//
// It also holds the test helpers the rest of the tree shares: one seeded random
// fill (Randn) and one closeness check (AssertClose).
package backendtest
