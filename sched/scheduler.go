package sched

import "github.com/rfnet/rfnet-native/tensor"

// Scheduler runs one denoising schedule. Call ScaleModelInput and Step once per
// step, in order.
type Scheduler interface {
	// Timesteps are the UNet's timestep inputs, one per step.
	Timesteps() []float64
	// InitNoiseSigma scales standard normal noise into the first latent.
	InitNoiseSigma() float64
	// ScaleModelInput returns the UNet input for the latent at this step.
	ScaleModelInput(latent *tensor.Tensor, step int) *tensor.Tensor
	// Step returns the latent after step, from the model output at that step.
	Step(modelOutput, latent *tensor.Tensor, step int) *tensor.Tensor
	// GradientStepScale is the factor that turns a gradient with respect to
	// the latent into a step of the latent at this step (RFNet steers with
	// latent - scale·∇loss): √(1-ᾱ_t), the noise level, for the schedulers on
	// ᾱ (DDIM, PNDM, DPM-Solver), σ² for Euler's sigmas. It is a scheduler
	// method, not RFNet's, because it reads each scheduler's own noise
	// levels, which stay private to it.
	GradientStepScale(step int) float64
}

// predictedX0Eps turns a model output into the predicted clean sample and noise.
func predictedX0Eps(p Prediction, out, latent *tensor.Tensor, alphaProd float64) (x0, eps *tensor.Tensor) {
	sa, sb := sqrt(alphaProd), sqrt(1-alphaProd)
	if p == VPrediction {
		// x₀ = √ᾱ·x - √(1-ᾱ)·v,  ε = √ᾱ·v + √(1-ᾱ)·x
		return latent.Scale(sa).Sub(out.Scale(sb)), out.Scale(sa).Add(latent.Scale(sb))
	}
	// x₀ = (x - √(1-ᾱ)·ε)/√ᾱ
	return latent.Sub(out.Scale(sb)).Scale(1 / sa), out
}
