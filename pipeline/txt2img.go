package pipeline

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/rng"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
)

// Request is one text-to-image generation.
type Request struct {
	Prompt, NegativePrompt string
	Steps                  int
	Guidance               float64
	Scheduler              string
	Width, Height          int
	Seed                   uint64
	// InitLatents, when set, replaces the noise drawn from Seed: [1, 4, H/8, W/8],
	// already multiplied by the scheduler's init_noise_sigma.
	InitLatents *tensor.Tensor
	// Timeline, when not nil, records the generation's stages and steps (--profile-out).
	Timeline *timeline.Recorder
	// Context, when not nil, cancels the generation between denoising steps
	// (a server's canceled job or a client gone): Generate then returns an
	// error that wraps Context.Err().
	Context context.Context
}

// Result is what a generation produced.
type Result struct {
	Image       *tensor.Tensor // [1, 3, H, W] in [0, 1]
	Latents     *tensor.Tensor // the final latents [1, 4, H/8, W/8]
	InitLatents *tensor.Tensor
	Cond        *tensor.Tensor // [1, 77, width]
	Uncond      *tensor.Tensor
	Timesteps   []float64
	// Truncated counts the prompt tokens past the 77-token window (dropped).
	Truncated, NegativeTruncated int
	Durations                    map[string]time.Duration
}

// MaxSide bounds the image's width and height: far past what any device can
// hold at SD's sizes (the memory check refuses much less), it keeps the size
// arithmetic away from overflow.
const MaxSide = 1 << 20

// CheckSide is the rule for an image's width or height, name being the flag
// or key that set it: a multiple of 8 (the autoencoder works on 8×8 blocks)
// from 8 to MaxSide. Flags, configuration files and requests all use it.
func CheckSide(name string, v int) error {
	if v < 8 || v%8 != 0 || v > MaxSide {
		return fmt.Errorf("%s %d: want a multiple of 8 from 8 to %d (the autoencoder works on 8×8 blocks)", name, v, MaxSide)
	}
	return nil
}

// GuidanceBatch is how many latents a UNet call takes at guidance scale g:
// the unconditional and the conditional one above 1, the conditional alone
// otherwise.
func GuidanceBatch(g float64) int {
	if g > 1 {
		return 2
	}
	return 1
}

// Validate checks a request against the model and fills defaults (steps 50,
// guidance 7.5, DDIM, the variant's size). Its errors name the Request field
// in lower case (width, steps), whatever set it.
func (m *Model) Validate(r *Request) error {
	if r.Steps == 0 {
		r.Steps = 50
	}
	if r.Scheduler == "" {
		r.Scheduler = "ddim"
	}
	if r.Width == 0 {
		r.Width = m.Variant.Width
	}
	if r.Height == 0 {
		r.Height = m.Variant.Height
	}
	for _, side := range []struct {
		name string
		v    int
	}{{"width", r.Width}, {"height", r.Height}} {
		if err := CheckSide(side.name, side.v); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
	}
	switch {
	case r.Steps < 1:
		return fmt.Errorf("pipeline: steps %d must be at least 1", r.Steps)
	case math.IsNaN(r.Guidance) || math.IsInf(r.Guidance, 0) || r.Guidance < 0:
		return fmt.Errorf("pipeline: guidance %v must be a finite number, 0 or more", r.Guidance)
	}
	if _, err := sched.New(r.Scheduler, m.Variant.Sched, r.Steps); err != nil {
		return err
	}
	if err := m.checkFits(r.Width, r.Height, GuidanceBatch(r.Guidance)); err != nil {
		return err
	}
	if r.InitLatents != nil {
		want := tensor.Shape{1, m.Variant.UNet.InChannels, r.Height / 8, r.Width / 8}
		if !r.InitLatents.Shape().Equal(want) {
			return fmt.Errorf("pipeline: initial latents have shape %v, want %v for %d×%d", r.InitLatents.Shape(), want, r.Width, r.Height)
		}
		if err := CheckInput(r.InitLatents, "the initial latents"); err != nil {
			return err
		}
	}
	return nil
}

// EncodePrompt tokenizes text and runs the text encoder: [1, 77, width], and
// the number of tokens cut off past the window.
func (m *Model) EncodePrompt(text string) (*tensor.Tensor, int) {
	ids, truncated := m.Tokenizer.Tokenize(text)
	return m.Text.Encode(tensor.FromInt32(m.Backend, tensor.Shape{1, clip.MaxLength}, ids)).To(m.DType), truncated
}

// Noise draws the initial latents for seed as diffusers does on the CPU
// (torch.randn with torch.Generator().manual_seed(seed)), times sigma.
func (m *Model) Noise(seed uint64, width, height int, sigma float64) *tensor.Tensor {
	shape := tensor.Shape{1, m.Variant.UNet.InChannels, height / 8, width / 8}
	v := rng.NewTorch(seed).Randn(shape.Numel())
	return tensor.FromFloat32(m.Backend, m.DType, shape, v).Scale(sigma)
}

// Progress is called after each denoising step with the latents it produced.
type Progress func(step, total int, latents *tensor.Tensor)

// Generate runs text-to-image with classifier-free guidance. progress may be nil.
func (m *Model) Generate(r Request, progress Progress) (*Result, error) {
	if err := m.Validate(&r); err != nil {
		return nil, err
	}
	res := &Result{Durations: map[string]time.Duration{}}
	tl := r.Timeline
	span := tl.Begin("generate", "prompt", r.Prompt, "seed", r.Seed, "steps", r.Steps, "size", fmt.Sprintf("%dx%d", r.Width, r.Height))
	defer span.End()
	start := time.Now()
	text := tl.Begin("text encoder")
	res.Cond, res.Truncated = m.EncodePrompt(r.Prompt)
	res.Uncond, res.NegativeTruncated = m.EncodePrompt(r.NegativePrompt)
	text.End()
	res.Durations["text"] = time.Since(start)
	if err := m.CheckFinite(res.Cond, "the text embedding of the prompt", "text encoder"); err != nil {
		return nil, err
	}
	if err := m.CheckFinite(res.Uncond, "the text embedding of the negative prompt", "text encoder"); err != nil {
		return nil, err
	}

	s, err := sched.New(r.Scheduler, m.Variant.Sched, r.Steps)
	if err != nil {
		return nil, err
	}
	latents := r.InitLatents
	if latents == nil {
		latents = m.Noise(r.Seed, r.Width, r.Height, s.InitNoiseSigma())
	}
	latents = latents.Move(m.Backend).To(m.DType)
	res.InitLatents = latents
	res.Timesteps = s.Timesteps()

	start = time.Now()
	denoise := tl.Begin("denoise", "scheduler", r.Scheduler, "guidance", r.Guidance)
	latents, err = m.Denoise(r.Context, s, latents, res.Cond, res.Uncond, r.Guidance, progress, tl)
	denoise.End()
	if err != nil {
		return nil, err
	}
	res.Latents = latents
	res.Durations["denoise"] = time.Since(start)
	if err := m.CheckFinite(latents, "the final latents", "unet"); err != nil {
		return nil, err
	}

	start = time.Now()
	decode := tl.Begin("vae decode")
	res.Image = m.DecodeImage(latents)
	decode.End()
	res.Durations["decode"] = time.Since(start)
	if err := m.CheckFinite(res.Image, "the decoded image", "vae"); err != nil {
		return nil, err
	}
	return res, nil
}

// Denoise runs every step of s from latents. With guidance > 1 the UNet sees
// [uncond, cond] as one batch and the two predictions are combined as
// uncond + guidance·(cond - uncond); otherwise only cond is used. tl (may be
// nil) gets a span per step. ctx (may be nil) is checked before every step.
func (m *Model) Denoise(ctx context.Context, s sched.Scheduler, latents, cond, uncond *tensor.Tensor, guidance float64, progress Progress, tl *timeline.Recorder) (*tensor.Tensor, error) {
	ts := s.Timesteps()
	context := cond
	if GuidanceBatch(guidance) == 2 {
		context = tensor.Concat(0, uncond, cond)
	}
	// The text is the same at every step: its cross-attention keys and values
	// are projected once, outside the per-call scopes, and freed at the end.
	prepared := m.UNet.PrepareContext(context)
	defer prepared.Free()
	next := m.stepper(s, prepared, latents, guidance) // a CUDA graph where the backend captures
	defer next.close()
	for i, t := range ts {
		if err := Canceled(ctx, i); err != nil {
			return nil, err
		}
		// A step that fails stays open and is left out of the timeline.
		step := tl.Begin("denoise step", "step", i, "timestep", t)
		var out *tensor.Tensor
		var err error
		latents, out, err = next.step(i, t)
		if err != nil {
			return nil, err
		}
		if i == 0 { // bad weights show at once; the final latents catch a later overflow
			if err := m.CheckFinite(out, "the UNet's prediction at step 1", "unet"); err != nil {
				return nil, err
			}
		}
		if err := m.Backend.Sync(); err != nil {
			return nil, fmt.Errorf("pipeline: step %d: %w", i, err)
		}
		step.End()
		if progress != nil {
			progress(i+1, len(ts), latents)
		}
	}
	return latents, nil
}

// DecodeImage turns latents into an image in [0, 1] (diffusers' postprocess:
// decode(latents / scaling_factor) / 2 + 0.5, clamped when written out).
func (m *Model) DecodeImage(latents *tensor.Tensor) *tensor.Tensor {
	img := m.Decoder.Decode(latents.Scale(1 / m.Variant.VAE.ScalingFactor))
	return img.Affine(0.5, 0.5)
}

// EncodeImage turns an image in [0, 1] [1, 3, H, W] into latents (the
// posterior mean times the scaling factor). The model must have been loaded
// with LoadOptions.VAEEncoder.
func (m *Model) EncodeImage(img *tensor.Tensor) *tensor.Tensor {
	if m.Encoder == nil {
		panic("pipeline: EncodeImage on a model loaded without LoadOptions.VAEEncoder")
	}
	return m.Encoder.Encode(img.To(m.DType).Affine(2, -1)).Scale(m.Variant.VAE.ScalingFactor)
}

// TextFeature is a text's pooled feature: the text encoder's last hidden
// state (after the final layer norm) at the first end-of-text token, as
// Hugging Face's CLIPTextModel pools it.
func (m *Model) TextFeature(text string) []float64 {
	ids, _ := m.Tokenizer.Tokenize(text)
	pos := 0
	for i, id := range ids {
		if id == m.Tokenizer.EndID() {
			pos = i
			break
		}
	}
	e := m.Text.Encode(tensor.FromInt32(m.Backend, tensor.Shape{1, clip.MaxLength}, ids))
	return e.Narrow(1, pos, 1).Float64s()
}
