// Package vae is the AutoencoderKL of Stable Diffusion and SDXL (the same
// architecture; config.go has both scales): the decoder that turns
// latents into images and the encoder whose posterior mean turns images into
// latents, with diffusers' parameter names (names.go maps the original
// single-file names and the pre-0.14 diffusers attention names onto them).
package vae
