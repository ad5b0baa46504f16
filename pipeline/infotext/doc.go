// Package infotext writes and reads the "parameters" text that AUTOMATIC1111's
// Stable Diffusion web UI (A1111) puts into its PNGs and most other tools
// read back: the prompt; "Negative prompt: …" when there is one; then one
// line of "Key: value" pairs, a value JSON-quoted when it holds a comma, a
// colon or a newline.
//
// Params is what this project writes: A1111's keys in A1111's order (Steps,
// Sampler, Schedule type where one is needed, CFG scale, Seed, Size, Model
// hash, Model) and then RFNet's own (Method, Init latents, Overall prompt,
// Objects, Object seeds). Parse reads any such text as A1111's
// parse_generation_parameters does (modules/infotext_utils.py), written from
// that function's behaviour: the same pattern for the pairs, the same
// unquoting, the same split of prompt and negative prompt. It leaves out what
// A1111 adds for its own UI: the defaults of keys a text lacks (Clip skip 1,
// Schedule type Automatic, …), the styles it finds in a prompt, and the split
// of a "WxH" value into Key-1 and Key-2.
//
// The format has limits that no quoting lifts, in A1111 as here: each line of
// a prompt loses its leading and trailing white space, and a prompt line that
// starts with "Negative prompt:" starts the negative prompt.
//
// The model hash is A1111's short hash: the first 10 hex digits of the SHA-256
// of the checkpoint file (for a diffusers folder, of its UNet weights file),
// cached between runs as A1111 caches it.
package infotext
