// Package rfnet is RFNet's stage 2 on top of a Stable Diffusion pipeline.Model:
// Semantic Alignment Assessment picks each object's description, every object
// is generated alone in a centered box with its cross-attention steered into
// the box, its mask is cut from its image by Segment Anything prompted at the
// peak of its word token's aggregated cross-attention (§8.1, Options.SAM), or
// without SAM comes from that attention alone (§8.2), the objects' latent trajectories are shifted onto their boxes
// and composed (largest first), and the overall scene is generated from the
// composition with frozen foreground steps, the suppression constraint and the
// reference constraint. The defaults reproduce the authors' published run;
// every number is in Config.
//
// Names follow the algorithm notes (../shared/docs/rfnet-algorithm.md): "SO"
// is a single-object run, a "key" names a cross-attention layer
// ("up.1.2.0"), "step" is a denoising step index and "iteration" one steering
// update inside a step. The paper, the reference code and the notes say
// "guidance" for three things, which have one word each here: "guidance" is
// classifier-free guidance alone (guidance_scale, CFG); "steering" is the
// gradient update of the latent by a loss on cross-attention maps (their
// latent or box guidance, §7.3: steer, steeringPass, SteeringKeys); the "reference
// constraint" is the overall run's term that keeps each object's attention as
// in its own run (their guidance constraint, §10.3).
package rfnet
