package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/unet"
	"github.com/rfnet/rfnet-native/vae"
	"github.com/rfnet/rfnet-native/weights"
)

// The layouts a checkpoint comes in (Model.Layout).
const (
	LayoutDiffusers  = "diffusers"
	LayoutSingleFile = "single-file"
)

// OptionError is a LoadOptions value that cannot be used: Field names the
// option (ModelType, Prediction), Value is what it held, Err says why. The
// command line reports it under the flag that set it.
type OptionError struct {
	Field, Value string
	Err          error
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("pipeline: %s %q: %v", e.Field, e.Value, e.Err)
}

func (e *OptionError) Unwrap() error { return e.Err }

// ErrNeedsConfig is wrapped when a single file's architecture, read from its
// tensor shapes, does not make a valid config: shapes tell channels and
// layers, not every choice of a config (the norm groups, for one), so such a
// checkpoint needs its config files (LoadOptions.ConfigDir).
var ErrNeedsConfig = errors.New("its architecture, read from the tensor shapes, needs its config files")

// textConfig is where a diffusers-style folder keeps the text encoder's
// config, the file that tells its family.
var textConfig = filepath.Join("text_encoder", "config.json")

// checkpoint is what detection found out about a checkpoint, before any of
// its weights is read.
type checkpoint struct {
	path    string
	layout  string
	variant Variant
	file    *weights.File // the single file, open; nil for a folder
}

// close closes the single file detect opened.
func (c checkpoint) close() {
	if c.file != nil {
		c.file.Close()
	}
}

// detect finds out what the checkpoint at path is, without reading any
// weights: its layout, its family and its text encoder's config, with
// o.ModelType applied (all the tokenizer needs). The rest of the variant, the
// architecture, comes after from readArchitecture. A single file is returned
// open, for the weights to be built from; the caller closes it.
func detect(path string, o LoadOptions) (checkpoint, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return checkpoint{}, fmt.Errorf("pipeline: weights: %w", err)
	}
	if fi.IsDir() {
		return detectFolder(path, o)
	}
	f, err := weights.Open(path)
	if err != nil {
		return checkpoint{}, err
	}
	c, err := detectFile(f, o)
	if err != nil {
		f.Close()
		return checkpoint{}, err
	}
	return c, nil
}

// detectFolder tells a diffusers folder's family from its text encoder's
// config, read once (keys it lacks keep its family's values).
func detectFolder(dir string, o LoadOptions) (checkpoint, error) {
	if !fileExists(filepath.Join(dir, "unet", "config.json")) {
		return checkpoint{}, fmt.Errorf("pipeline: %s is not a diffusers folder (no unet/config.json)", dir)
	}
	text, err := clip.LoadFamilyConfig(filepath.Join(dir, textConfig), func(c clip.Config) clip.Config { return familyVariant(c).Text })
	if err != nil {
		return checkpoint{}, err
	}
	v, err := withModelType(familyVariant(text), o.ModelType, dir, textConfig+" (hidden_act "+text.HiddenAct+")")
	if err != nil {
		return checkpoint{}, err
	}
	v.Text = text
	return checkpoint{path: dir, layout: LayoutDiffusers, variant: v}, nil
}

// detectFile tells a single file's family from its text encoder's names,
// whose shapes give the text encoder's config.
func detectFile(f *weights.File, o LoadOptions) (checkpoint, error) {
	text, err := clip.InferConfig(f)
	if err != nil {
		return checkpoint{}, fmt.Errorf("pipeline: %s does not look like a Stable Diffusion checkpoint: %w", f.Path(), err)
	}
	family := familyVariant(text)
	v, err := withModelType(family, o.ModelType, f.Path(), familyEvidence(family))
	if err != nil {
		return checkpoint{}, err
	}
	v.Text = text
	return checkpoint{path: f.Path(), layout: LayoutSingleFile, variant: v, file: f}, nil
}

// readArchitecture completes c's variant after detect: the UNet, VAE and
// scheduler configs, from a folder's files, from o.ConfigDir for a single
// file, or else from the single file's shapes; then o.Prediction.
func (c *checkpoint) readArchitecture(o LoadOptions) error {
	v := &c.variant
	var err error
	switch {
	case c.layout == LayoutDiffusers:
		err = readModelConfigs(v, c.path)
	case o.ConfigDir != "":
		if v.Text, err = clip.LoadConfig(filepath.Join(o.ConfigDir, textConfig), v.Text); err == nil {
			err = readModelConfigs(v, o.ConfigDir)
		}
	default:
		err = inferModelConfigs(v, c.file)
	}
	if err != nil {
		return err
	}
	*v, err = withPrediction(*v, o.Prediction)
	return err
}

// familyVariant is the variant a text encoder's config implies: OpenCLIP
// ViT-H (GELU) is SD 2.x, taken as SD 2.1-base; CLIP ViT-L (quick GELU) is
// SD 1.x, taken as SD 1.5. A single file's config comes from its names
// (clip.InferConfig), so the names decide there. The one place the family is
// decided.
func familyVariant(text clip.Config) Variant {
	if text.HiddenAct == "gelu" {
		return SD21Base()
	}
	return SD15()
}

// familyEvidence names the single-file tensors that showed a family.
func familyEvidence(v Variant) string {
	if v.Family == SD2 {
		return clip.PrefixOpenCLIP + "*"
	}
	return clip.PrefixCLIP + "*"
}

// withModelType is LoadOptions.ModelType over the detected variant v: a
// variant of the same family (a name of the other family would load the
// wrong text encoder and tokenizer padding, silently), or v when none is
// named. path and evidence say where the family was seen.
func withModelType(v Variant, modelType, path, evidence string) (Variant, error) {
	if modelType == "" {
		return v, nil
	}
	want, err := VariantByName(modelType)
	if err != nil {
		return Variant{}, err
	}
	if want.Family != v.Family {
		return Variant{}, &OptionError{"ModelType", modelType, fmt.Errorf("an %s model, but %s holds an %s text encoder (%s); choose an %s type",
			want.Family, path, v.Family, evidence, v.Family)}
	}
	return want, nil
}

func withPrediction(v Variant, p string) (Variant, error) {
	if p == "" {
		return v, nil
	}
	pred, err := sched.ParsePrediction(p)
	if err != nil {
		return Variant{}, &OptionError{"Prediction", p, err}
	}
	v.Sched.PredictionType = pred
	return v, nil
}

// readModelConfigs reads the unet/, vae/ and scheduler/ config files of a
// diffusers-style folder over v (the text encoder's was read first, to tell
// the family).
func readModelConfigs(v *Variant, dir string) (err error) {
	if v.UNet, err = unet.LoadConfig(filepath.Join(dir, "unet", "config.json"), v.UNet); err != nil {
		return err
	}
	if v.VAE, err = vae.LoadConfig(filepath.Join(dir, "vae", "config.json"), v.VAE); err != nil {
		return err
	}
	if p := filepath.Join(dir, "scheduler", "scheduler_config.json"); fileExists(p) {
		v.Sched, err = sched.LoadConfig(p, v.Sched)
	}
	return err
}

// inferModelConfigs reads a single file's UNet and VAE configs from its
// shapes, with the family's UNet heads.
func inferModelConfigs(v *Variant, f *weights.File) (err error) {
	inferred := func(err error) error {
		return fmt.Errorf("pipeline: %s: %w: %w", f.Path(), err, ErrNeedsConfig)
	}
	if v.UNet, err = unet.InferConfig(f, v.Family.singleFileHeads); err != nil {
		return inferred(err)
	}
	v.UNet.UpcastAttention = v.Name == "sd21"
	if v.VAE, err = vae.InferConfig(f); err != nil {
		return inferred(err)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
