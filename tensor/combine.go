package tensor

import "fmt"

// CoefDType is the dtype of Combine's coefficients for inputs of dtype d:
// the dtype the sums are accumulated in (Float64 for Float64 inputs,
// Float32 for every other).
func CoefDType(d DType) DType {
	if d == Float64 {
		return Float64
	}
	return Float32
}

// Combine returns R linear combinations of the K leading slices of x:
// x [K, ...] and coef [R, K] in CoefDType(x's dtype) give [R, ...] with
// out[r] = Σ_k coef[r, k]·x[k], accumulated in the coefficients' dtype and
// rounded to x's dtype once. A scheduler's step (sched) is one: the latent,
// the model outputs (both halves of classifier-free guidance, the guidance
// combine folded into the coefficients) and the scheduler's history are
// the slices, the step's arithmetic is the coefficients. The gradient with
// respect to x is Combine(coefᵀ, dy); coef must be untracked (a constant).
func Combine(coef, x *Tensor) *Tensor {
	if coef.Rank() != 2 || x.Rank() < 1 || coef.shape[1] < 1 || coef.shape[1] != x.shape[0] {
		panic(fmt.Sprintf("tensor: combine: coefficients %v for slices %v", coef.shape, x.shape))
	}
	if want := CoefDType(x.DType()); coef.DType() != want || coef.b != x.b {
		panic(fmt.Sprintf("tensor: combine: coefficients %v for %v: want %s on %s", coef, x, want, x.b.Name()))
	}
	requireUntracked("combine", coef)
	rows, k := coef.shape[0], coef.shape[1]
	shape := x.Shape()
	shape[0] = rows
	out := x.derive(x.b.Combine(coef.buf, x.buf, rows, k, x.Numel()/k), shape)
	record(OpCombine, out, []*Tensor{x, coef}, nil, nil)
	return out
}
