// Package cpu is the pure-Go backend: plain loops, parallel over cores, that
// define what every op means. It computes in float32 (the default) and float64
// (gradient checks and reference runs); float16 and bfloat16 buffers are storage
// only and are converted before use. GEMMs go through gonum's BLAS.
//
// Every method of tensor.Backend is a one-line dispatch from Backend to kern[T],
// where the typed loops live, one file per op family, named as tensor.Backend's
// doc lists them.
package cpu
