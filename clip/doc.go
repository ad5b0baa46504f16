// Package clip owns the CLIP BPE tokenizer and the text encoders Stable Diffusion
// conditions on: CLIP ViT-L/14 (SD 1.x: quick-GELU, last layer then the final
// layer norm) and OpenCLIP ViT-H/14 (SD 2.x: GELU, the penultimate layer then the
// final layer norm) and OpenCLIP ViT-bigG/14 (the SDXL refiner: GELU, the
// penultimate layer without the final norm, and a pooled embedding through
// text_projection, as CLIPTextModelWithProjection). Weights use the Hugging
// Face CLIPTextModel(WithProjection) names; names.go
// maps the single-file (original) names onto them. The tokenizer cuts a prompt
// around its special tokens as diffusers does, or as open_clip does (Split).
package clip
