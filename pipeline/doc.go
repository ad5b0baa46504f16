// Package pipeline puts the models together: the variants of Stable Diffusion
// (SD 1.x, 2.x-base, 2.x-v) as plain configs, loading from a diffusers folder
// or a single-file checkpoint, text-to-image with classifier-free guidance, and
// the image files it writes. RFNet's two-stage flow builds on it.
package pipeline
