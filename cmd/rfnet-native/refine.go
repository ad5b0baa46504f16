package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // --image formats
	_ "image/jpeg" // --image formats
	_ "image/png"  // --image formats
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// refineFlags are refine's flags: the SDXL refiner's img2img.
type refineFlags struct {
	model                                  modelFlags
	image, prompt, negative, out, saveText string
	strength, guidance                     float64
	aesthetic, negativeAesthetic           float64
	steps, size                            int
	seed                                   uint64
}

func setupRefine(fs *pflag.FlagSet) func() error {
	var f refineFlags
	m := &f.model
	fs.StringVar(&m.weights, "weights", "", "the SDXL refiner: its diffusers folder, sd_xl_refiner_1.0.safetensors, or a Hub name (sdxl-refiner: stabilityai/stable-diffusion-xl-refiner-1.0)")
	fs.StringVar(&m.tokenizer, "tokenizer", "", "tokenizer_2/ folder or bpe_simple_vocab_16e6.txt.gz (default: the folder's tokenizer_2/; a single file needs it)")
	registerTokenizerSplit(fs, &m.tokenizerSplit)
	fs.StringVar(&m.config, "config", "", "for a single file: a refiner folder whose config files describe it (default: inferred from its shapes)")
	m.registerDevice(fs)
	fs.BoolVar(&m.offline, "offline", false, "never use the network: a Hub name must be in the Hugging Face cache (as HF_HUB_OFFLINE=1)")
	fs.StringVar(&f.image, "image", "", "the image to refine (PNG, JPEG or GIF; its width and height multiples of 8, or see --size)")
	fs.StringVar(&f.prompt, "prompt", "", "the text prompt")
	fs.StringVar(&f.negative, "negative-prompt", "", "the negative prompt (an empty one is encoded as text, as the refiner does)")
	fs.Float64Var(&f.strength, "strength", pipeline.DefaultRefineStrength, "how much of the schedule to run: the image is noised to step steps - int(steps·strength) and denoised from there (0 < strength ≤ 1)")
	fs.IntVar(&f.steps, "steps", pipeline.DefaultRefineSteps, "steps of the full Euler schedule (int(steps·strength) of them run)")
	fs.Float64Var(&f.guidance, "guidance", pipeline.DefaultRefineGuidance, "classifier-free guidance scale (1 or less: none)")
	fs.Float64Var(&f.aesthetic, "aesthetic-score", pipeline.DefaultAestheticScore, "the aesthetic score the prompt is conditioned on")
	fs.Float64Var(&f.negativeAesthetic, "negative-aesthetic-score", pipeline.DefaultNegativeAestheticScore, "the aesthetic score of the unconditional branch")
	fs.IntVar(&f.size, "size", 0, "first resize the image to N×N with Lanczos (Pillow's), as RFNet's pass does with 1024 (0: keep its size)")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of the posterior sample and the noise (the same draws as diffusers with torch.Generator().manual_seed on the CPU)")
	fs.StringVar(&f.saveText, "save-text-embeddings", "", "write \"cond\", \"pooled\" (and with guidance \"uncond\", \"uncond_pooled\") to this .safetensors file")
	fs.StringVar(&f.out, "out", "refined.png", "output PNG (with its parameters text; a JSON sidecar with them is written next to it)")
	return f.run
}

func (f *refineFlags) run() error {
	switch {
	case f.model.weights == "":
		return fmt.Errorf("--weights is required (the SDXL refiner's folder, single file, or a Hub name such as sdxl-refiner)")
	case f.image == "":
		return fmt.Errorf("--image is required")
	case f.size != 0:
		if err := pipeline.CheckSide("--size", f.size); err != nil {
			return err
		}
	}
	im, err := readImage(f.image)
	if err != nil {
		return err
	}
	if f.size != 0 {
		if im, err = pipeline.ResizeLanczos(im, f.size, f.size); err != nil {
			return err
		}
	}
	// Before the model loads: the autoencoder works on 8×8 blocks.
	if w, h := im.Bounds().Dx(), im.Bounds().Dy(); w%8 != 0 || h%8 != 0 {
		return fmt.Errorf("--image %s is %dx%d: its width and height must be multiples of 8 (--size N resizes it to N×N first)", f.image, w, h)
	}
	b, d, err := f.model.backend()
	if err != nil {
		return err
	}
	split, err := parseTokenizerSplit(f.model.tokenizerSplit)
	if err != nil {
		return err
	}
	if err := checkDistinct([]struct{ flag, path string }{{"--out", f.out}, {"--out's JSON sidecar", pipeline.SidecarPath(f.out)}, {"--save-text-embeddings", f.saveText}}); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	loadStart := time.Now()
	r, err := loadRefiner(ctx, refinerFlags{"--weights", "--tokenizer", "--config"}, f.model.weights, f.model.offline, pipeline.LoadOptions{Backend: b, DType: d, Tokenizer: f.model.tokenizer,
		ConfigDir: f.model.config, TokenizerSplit: split})
	if err != nil {
		return err
	}
	loadTime := time.Since(loadStart)
	defer r.Close()
	ckpt, err := infotext.RefinerCheckpointOf(r)
	if err != nil {
		return err
	}
	q := pipeline.NewRefineRequest(pipeline.FromImage(b, d, im), f.prompt)
	q.NegativePrompt, q.Strength, q.Steps, q.Guidance, q.Seed = f.negative, f.strength, f.steps, f.guidance, f.seed
	q.AestheticScore, q.NegativeAestheticScore, q.Context = f.aesthetic, f.negativeAesthetic, ctx
	refineStart := time.Now()
	res, err := r.Refine(q)
	if err != nil {
		return err
	}
	meta := pipeline.NewRefineSidecar(r, q, res, version)
	meta.Method, meta.Input, meta.Resized = "sdxl-refiner", f.image, f.size
	if r.Path != f.model.weights {
		meta.Weights = f.model.weights
	}
	meta.Seconds["load"], meta.Seconds["refine"] = loadTime.Seconds(), time.Since(refineStart).Seconds()
	if res.Truncated > 0 {
		fmt.Fprintf(os.Stderr, "rfnet-native: the prompt's last %d tokens are past the 77-token window and were dropped\n", res.Truncated)
	}
	if f.saveText != "" {
		entries := []weights.Entry{{Name: "cond", Tensor: res.Cond, DType: tensor.Float32}, {Name: "pooled", Tensor: res.Pooled, DType: tensor.Float32}}
		if res.Uncond != nil {
			entries = append(entries, weights.Entry{Name: "uncond", Tensor: res.Uncond, DType: tensor.Float32},
				weights.Entry{Name: "uncond_pooled", Tensor: res.UncondPooled, DType: tensor.Float32})
		}
		if err := weights.Save(f.saveText, entries, map[string]string{"format": "pt"}); err != nil {
			return fmt.Errorf("--save-text-embeddings: %w", err)
		}
	}
	// No invisible watermark is added (diffusers adds one when the invisible-watermark package is installed).
	if err := pipeline.WriteImage(f.out, res.Image, meta, infotext.OfRefineSidecar(meta, ckpt).Format()); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(os.Stderr, "rfnet-native: refined %s (%d of %d steps) into %s\n", f.image, len(res.Timesteps), f.steps, f.out)
	return nil
}

// refinerFlags name the flags that gave loadRefiner its weights, a single
// file's tokenizer and its config files, for its errors.
type refinerFlags struct{ weights, tokenizer, config string }

// loadRefiner loads the SDXL refiner weights names (a path, or a Hub name
// such as sdxl-refiner, fetched into the Hugging Face cache like --weights'
// of generate); flags name where each input came from in its errors.
func loadRefiner(ctx context.Context, flags refinerFlags, name string, offline bool, o pipeline.LoadOptions) (*pipeline.Refiner, error) {
	path, err := resolveModel(ctx, flags.weights, name, offline, o.DType != tensor.Float32)
	if err != nil {
		return nil, err
	}
	r, err := pipeline.LoadRefiner(path, o)
	switch {
	case errors.Is(err, pipeline.ErrNoTokenizer):
		return nil, fmt.Errorf("%s: %w; %s names it", flags.weights, err, flags.tokenizer)
	case errors.Is(err, pipeline.ErrNeedsConfig):
		return nil, fmt.Errorf("%s: %w (pass %s DIR, an SDXL refiner folder with its unet/, vae/ and text_encoder_2/ config.json)", flags.weights, err, flags.config)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", flags.weights, loadFlagError(err))
	}
	return r, nil
}

// readImage decodes the image file at path, naming it in every error.
func readImage(path string) (image.Image, error) {
	raw, err := regular.ReadFileAtMost(path, 1<<30)
	if err != nil {
		return nil, fmt.Errorf("--image: %w", err)
	}
	im, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("--image %s: cannot read it as an image (PNG, JPEG or GIF): %w", path, err)
	}
	return im, nil
}
