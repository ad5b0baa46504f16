// Package sched holds the samplers that turn the UNet's predictions into
// denoising steps, step for step as diffusers v0.21 computes them: DDIM (eta 0,
// RFNet's choice), PNDM (PLMS steps only, as Stable Diffusion ships it), Euler
// and DPM-Solver++ 2M; epsilon and v-prediction. A Scheduler is used for one
// generation: it keeps the history the multistep methods need.
//
// Names: "step" is the index 0..N-1 of a denoising step, "timestep" the
// training-time value the UNet is conditioned on at that step.
package sched
