// Package unet is the UNet2DConditionModel of Stable Diffusion 1.x and 2.x and of
// the SDXL refiner (text_time conditioning, deeper transformers), with
// diffusers' parameter names (names.go maps the original single-file names onto
// them). Every cross-attention layer can hand its probability maps to a hook,
// keyed as RFNet names them: "down.{block}.{attention}.{transformer}",
// "mid.0.0.0", "up.{block}.{attention}.{transformer}"; the hook can stop the
// forward pass there (the guidance loss reads no further). A generation
// projects its text into every cross-attention layer's keys and values once
// (PrepareContext, then ForwardContext at each step).
package unet
