package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// sdxlFlags are generate's flags of RFNet's SDXL refiner pass (§11.2; the
// settings themselves are rfnet.SDXLRequest's).
type sdxlFlags struct {
	on                         bool
	weights, tokenizer, config string
	stepRatio                  float64
	size                       int
}

func (f *sdxlFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.on, "sdxl", false, "rfnet: refine the image with the SDXL refiner after the overall run, as the published run does: "+rfnet.SDXLImage+" beside image.png, and --out gets the refined image")
	fs.StringVar(&f.weights, "sdxl-weights", "sdxl-refiner", "rfnet --sdxl: the refiner: a diffusers folder, a single .safetensors file (with --sdxl-tokenizer), or a Hub name (the Hugging Face cache, else downloaded)")
	f.registerSingleFile(fs)
	fs.Float64Var(&f.stepRatio, "sdxl-step-ratio", rfnet.Default().SDXLStepRatio, "rfnet --sdxl: the refiner's strength, the share of its 50 steps run (sdxl_step_ratio)")
	fs.IntVar(&f.size, "sdxl-size", rfnet.SDXLSize, "rfnet --sdxl: the side the image is resized to (Lanczos) before refining; the published run's is 1024")
}

// registerSingleFile registers --sdxl-tokenizer and --sdxl-config, what a
// single-file refiner may need (generate's and serve's).
func (f *sdxlFlags) registerSingleFile(fs *pflag.FlagSet) {
	fs.StringVar(&f.tokenizer, "sdxl-tokenizer", "", "rfnet --sdxl: the refiner's tokenizer (a tokenizer_2/ folder or bpe_simple_vocab_16e6.txt.gz) for a single-file refiner, which holds none (a folder has its own)")
	fs.StringVar(&f.config, "sdxl-config", "", "rfnet --sdxl: an SDXL refiner folder whose config.json files describe a single-file refiner whose architecture its tensor shapes do not tell")
}

// names are f's flags, which --method sd refuses.
func (f *sdxlFlags) names() []string {
	return []string{"sdxl", "sdxl-weights", "sdxl-step-ratio", "sdxl-size", "sdxl-tokenizer", "sdxl-config"}
}

// apply checks the flags and sets sdxl_step_ratio on c when given.
func (f *sdxlFlags) apply(changed func(string) bool, c *rfnet.Config) error {
	if !f.on {
		for _, n := range f.names()[1:] {
			if changed(n) {
				return fmt.Errorf("--%s applies with --sdxl", n)
			}
		}
	}
	if changed("sdxl-step-ratio") {
		if !(f.stepRatio > 0 && f.stepRatio <= 1) {
			return fmt.Errorf("--sdxl-step-ratio %v: want (0, 1]", f.stepRatio)
		}
		c.SDXLStepRatio = f.stepRatio
	}
	if f.on {
		if err := pipeline.CheckSide("--sdxl-size", f.size); err != nil {
			return err
		}
	}
	return nil
}

// load loads the refiner once for the process, on the SD model's backend and
// in its dtype (nil without --sdxl).
func (f *sdxlFlags) load(ctx context.Context, m *pipeline.Model, offline bool) (*rfnet.SDXL, func(), error) {
	if !f.on {
		return nil, func() {}, nil
	}
	start := time.Now()
	r, err := loadRefiner(ctx, refinerFlags{"--sdxl-weights", "--sdxl-tokenizer", "--sdxl-config"}, f.weights, offline,
		pipeline.LoadOptions{Backend: m.Backend, DType: m.DType, Tokenizer: f.tokenizer, ConfigDir: f.config})
	if err != nil {
		return nil, nil, err
	}
	ckpt, err := infotext.RefinerCheckpointOf(r)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "rfnet-native: loaded the SDXL refiner %s in %s\n", r.Path, time.Since(start).Round(time.Millisecond))
	return &rfnet.SDXL{Refiner: r, Checkpoint: ckpt, Weights: f.weights, Size: f.size, Version: version, Context: ctx},
		func() { r.Close() }, nil
}
