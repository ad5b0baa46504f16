// Package nn holds the layers the models are built from (Linear, Conv2d,
// GroupNorm, LayerNorm, attention, GEGLU feed-forward, the ResNet block and the
// 2× resamplers), each loaded from a weights.Source under its diffusers names and
// run with tensor ops, so gradients flow through them to a tracked latent.
// Self-attention layers hold to_q, to_k and to_v stacked into one projection
// (one GEMM; the attention reads its thirds in place).
package nn
