// Package tensor owns the Tensor type, shapes, dtypes, the Backend interface
// that the cpu and cuda packages implement, and the gradient tape.
//
// A Tensor is a contiguous, row-major buffer that lives on one backend, plus its
// shape. Views and strides never leave this package: Reshape shares the buffer,
// and every other layout change (Permute, Narrow, Concat) makes a contiguous copy,
// so a backend only ever sees contiguous buffers with explicit sizes.
//
// Gradients are for inputs only. A Tape tracks the tensors handed to Tape.Track
// (in practice, the diffusion latent). An op records a node on the tape only when
// one of its inputs is tracked; weights are never tracked, so no weight gradient
// is ever computed. Tape.Backward walks the nodes in reverse, adds into the input
// gradients, and then drops the tape. All backward rules live in grad.go.
//
// Naming: "latent" is the diffusion latent, "timestep" the scheduler timestep,
// Heads is the number of attention heads and HeadDim the width of one head.
package tensor
