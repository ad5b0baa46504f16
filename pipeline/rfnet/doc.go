// Package rfnet is RFNet's stage 2 on top of a Stable Diffusion pipeline.Model:
// Semantic Alignment Assessment picks each object's description, every object
// is generated alone in a centered box under cross-attention box guidance, its
// saliency mask comes from the aggregated cross-attention of its word token, the
// objects' latent trajectories are shifted onto their boxes and composed
// (largest first), and the overall scene is generated from the composition with
// frozen foreground steps, the suppression constraint and the guidance
// (reference-attention) constraint. The defaults reproduce the authors'
// published run; every number is in Config.
//
// Names follow the algorithm notes (../shared/docs/rfnet-algorithm.md): "SO"
// is a single-object run, a "key" names a cross-attention layer
// ("up.1.2.0"), "step" is a denoising step index and "iteration" one guidance
// update inside a step.
package rfnet
