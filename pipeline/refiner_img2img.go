package pipeline

import (
	"context"
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/rng"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// The defaults of diffusers' StableDiffusionXLImg2ImgPipeline (v0.21.4), which
// RFNet's refinement pass keeps (algorithm notes §11.2).
const (
	DefaultRefineStrength         = 0.3
	DefaultRefineSteps            = 50
	DefaultRefineGuidance         = 5.0
	DefaultAestheticScore         = 6.0
	DefaultNegativeAestheticScore = 2.5
	// RefineScheduler is the refiner's scheduler (its EulerDiscreteScheduler),
	// under the name sched.New knows.
	RefineScheduler = "euler"
)

// RefineRequest is one SDXL refiner img2img run.
type RefineRequest struct {
	// Image is [1, 3, H, W] in [0, 1], H and W multiples of 8.
	Image                  *tensor.Tensor
	Prompt, NegativePrompt string
	// Strength is the part of the schedule that is run: the image is noised to
	// the timestep of step Steps - int(Steps·Strength) and denoised from there.
	Strength float64
	Steps    int
	Guidance float64
	// AestheticScore and NegativeAestheticScore are the last time id of the
	// conditional and the unconditional half.
	AestheticScore, NegativeAestheticScore float64
	Seed                                   uint64
	// Context, when not nil, cancels the run between denoising steps.
	Context context.Context
	// Progress, when not nil, is called after each denoising step run: steps
	// 1 to StepsRun() of StepsRun().
	Progress Progress
}

// StepsRun is the number of denoising steps q runs: int(Steps·Strength).
func (q RefineRequest) StepsRun() int { return int(float64(q.Steps) * q.Strength) }

// NewRefineRequest is a request for image and prompt with the pipeline's defaults.
func NewRefineRequest(image *tensor.Tensor, prompt string) RefineRequest {
	return RefineRequest{Image: image, Prompt: prompt, Strength: DefaultRefineStrength, Steps: DefaultRefineSteps,
		Guidance: DefaultRefineGuidance, AestheticScore: DefaultAestheticScore, NegativeAestheticScore: DefaultNegativeAestheticScore}
}

// RefineResult is what a refinement produced.
type RefineResult struct {
	Image       *tensor.Tensor // [1, 3, H, W] in [0, 1], not yet clamped
	Latents     *tensor.Tensor // the final latents
	InitLatents *tensor.Tensor // the encoded image, noised to the first timestep run
	// Cond and Uncond are the prompt embeddings [1, 77, D], Pooled and
	// UncondPooled the pooled ones [1, P]; the unconditional ones are nil
	// without guidance (Guidance ≤ 1).
	Cond, Uncond, Pooled, UncondPooled *tensor.Tensor
	TimeIDs, NegativeTimeIDs           []float64
	Timesteps                          []float64 // the steps run
	Truncated, NegativeTruncated       int       // prompt tokens past the 77-token window
}

// validate checks q against the model.
func (r *Refiner) validate(q RefineRequest) error {
	if r.Tokenizer == nil {
		return fmt.Errorf("pipeline: refine: %s was loaded without a tokenizer (LoadOptions.NoTokenizer)", r.Path)
	}
	if q.Image == nil || q.Image.Rank() != 4 || q.Image.Dim(0) != 1 || q.Image.Dim(1) != 3 {
		shape := "none"
		if q.Image != nil {
			shape = fmt.Sprint(q.Image.Shape())
		}
		return fmt.Errorf("pipeline: refine: image %s, want [1, 3, H, W]", shape)
	}
	for _, side := range []struct {
		name string
		v    int
	}{{"image width", q.Image.Dim(3)}, {"image height", q.Image.Dim(2)}} {
		if err := CheckSide(side.name, side.v); err != nil {
			return fmt.Errorf("pipeline: refine: %w", err)
		}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !(q.Strength > 0 && q.Strength <= 1):
		return fmt.Errorf("pipeline: refine: strength %v must be in (0, 1]", q.Strength)
	case q.Steps < 1:
		return fmt.Errorf("pipeline: refine: steps %d must be at least 1", q.Steps)
	case int(float64(q.Steps)*q.Strength) < 1:
		return fmt.Errorf("pipeline: refine: %d steps at strength %v run no step (int(steps·strength) is 0)", q.Steps, q.Strength)
	case !finite(q.Guidance) || q.Guidance < 0:
		return fmt.Errorf("pipeline: refine: guidance %v must be a finite number, 0 or more", q.Guidance)
	case !finite(q.AestheticScore) || !finite(q.NegativeAestheticScore):
		return fmt.Errorf("pipeline: refine: aesthetic scores %v and %v must be finite", q.AestheticScore, q.NegativeAestheticScore)
	}
	return CheckInput(q.Image, "the image to refine")
}

// encodePrompt tokenizes text and runs the text encoder: the prompt
// embeddings, the pooled embedding and the tokens cut off past the window.
func (r *Refiner) encodePrompt(text string) (emb, pooled *tensor.Tensor, truncated int) {
	ids, truncated := r.Tokenizer.Tokenize(text)
	emb, pooled = r.Text.EncodeSDXL(tensor.FromInt32(r.Backend, tensor.Shape{1, clip.MaxLength}, ids))
	return emb, pooled, truncated
}

// Refine runs img2img as diffusers' StableDiffusionXLImg2ImgPipeline (v0.21.4,
// requires_aesthetics_score) does on the CPU: the prompts encoded (an empty
// negative prompt as text: the refiner does not zero it), the image encoded
// and its posterior sampled with torch.Generator().manual_seed(Seed), the
// Euler schedule cut by strength, the sample noised to its first timestep
// with the generator's next draw, classifier-free guidance with the time ids
// (H, W, 0, 0, aesthetic score) and (H, W, 0, 0, negative aesthetic score),
// and the latents decoded. No watermark is added.
func (r *Refiner) Refine(q RefineRequest) (*RefineResult, error) {
	if err := r.validate(q); err != nil {
		return nil, err
	}
	res := &RefineResult{}
	cfg := GuidanceBatch(q.Guidance) == 2
	res.Cond, res.Pooled, res.Truncated = r.encodePrompt(q.Prompt)
	if cfg {
		res.Uncond, res.UncondPooled, res.NegativeTruncated = r.encodePrompt(q.NegativePrompt)
	}

	s, err := sched.New(RefineScheduler, r.Variant.Sched, q.Steps)
	if err != nil {
		return nil, err
	}
	start := q.Steps - q.StepsRun()
	res.Timesteps = s.Timesteps()[start:]

	// The generator's draws in the pipeline's order: the posterior sample, then the noise.
	g := rng.NewTorch(q.Seed)
	mean, std := r.Encoder.Posterior(q.Image.Move(r.Backend).To(r.VAEDType).Affine(2, -1))
	draw := func(d tensor.DType) *tensor.Tensor {
		return tensor.FromFloat32(r.Backend, d, mean.Shape(), g.Randn(mean.Numel()))
	}
	latents := mean.Add(std.Mul(draw(r.VAEDType))).To(r.DType).Scale(r.Variant.VAE.ScalingFactor)
	// Euler's add_noise: x + σ·ε at the first step run (GradientStepScale is σ² for Euler).
	latents = latents.Add(draw(r.DType).Scale(math.Sqrt(s.GradientStepScale(start))))
	res.InitLatents = latents

	h, w := float64(q.Image.Dim(2)), float64(q.Image.Dim(3))
	res.TimeIDs = []float64{h, w, 0, 0, q.AestheticScore}
	res.NegativeTimeIDs = []float64{h, w, 0, 0, q.NegativeAestheticScore}
	context, added := res.Cond, &unet.Added{TextEmbeds: res.Pooled, TimeIDs: res.TimeIDs}
	if cfg {
		context = tensor.Concat(0, res.Uncond, res.Cond)
		added = &unet.Added{TextEmbeds: tensor.Concat(0, res.UncondPooled, res.Pooled),
			TimeIDs: append(append([]float64(nil), res.NegativeTimeIDs...), res.TimeIDs...)}
	}
	// The text's cross-attention keys and values, projected once for every step.
	prepared := r.UNet.PrepareContext(context)
	defer prepared.Free()
	for i := start; i < q.Steps; i++ {
		if err := Canceled(q.Context, i-start); err != nil {
			return nil, err
		}
		t := s.Timesteps()[i]
		x, times := latents, []float64{t}
		if cfg {
			x, times = tensor.Concat(0, latents, latents), []float64{t, t}
		}
		out, err := r.UNet.ForwardContext(s.ScaleModelInput(x, i), times, prepared, added, nil)
		if err != nil {
			return nil, err
		}
		if i == start { // bad weights show at once; the final latents catch a later overflow
			if err := refineFinite(out, "the UNet's prediction at step 1", r.DType); err != nil {
				return nil, err
			}
		}
		if cfg {
			parts := out.Chunk(2, 0)
			out = parts[0].Add(parts[1].Sub(parts[0]).Scale(q.Guidance))
		}
		latents = s.Step(out, latents, i)
		if err := r.Backend.Sync(); err != nil {
			return nil, fmt.Errorf("pipeline: refine: step %d: %w", i-start, err)
		}
		if q.Progress != nil {
			q.Progress(i-start+1, q.Steps-start, latents)
		}
	}
	res.Latents = latents
	if err := refineFinite(latents, "the final latents", r.DType); err != nil {
		return nil, err
	}
	res.Image = r.Decoder.Decode(latents.To(r.VAEDType).Scale(1/r.Variant.VAE.ScalingFactor)).Affine(0.5, 0.5)
	if err := refineFinite(res.Image, "the decoded image", r.VAEDType); err != nil {
		return nil, err
	}
	return res, nil
}

// refineFinite returns an error when t, computed in dtype d, holds NaN or Inf.
func refineFinite(t *tensor.Tensor, what string, d tensor.DType) error {
	i, v := firstNonFinite(t.Float32s())
	if i < 0 {
		return nil
	}
	hint := "the weights may hold NaN or Inf"
	if d == tensor.Float16 {
		hint = "the computation may have overflowed in fp16: compute in bf16 or fp32"
	}
	return fmt.Errorf("pipeline: refine: %s %w (element %d is %v): %s", what, ErrNonFinite, i, v, hint)
}
