package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
	"github.com/rfnet/rfnet-native/vae"
	"github.com/rfnet/rfnet-native/weights"
)

// RefinerVariant is everything about an SDXL refiner that its weights do not say.
type RefinerVariant struct {
	Name  string
	Text  clip.Config // text_encoder_2: the refiner has no first text encoder
	UNet  unet.Config
	VAE   vae.Config
	Sched sched.Config
	Pad   string // tokenizer_2's padding token
}

// SDXLRefiner is stabilityai/stable-diffusion-xl-refiner-1.0, per its config
// files: OpenCLIP ViT-bigG/14, the refiner UNet, the SDXL autoencoder, and
// the Euler scheduler's config (SD's betas, "leading" timestep spacing).
func SDXLRefiner() RefinerVariant {
	s := sched.SD()
	s.TimestepSpacing = "leading"
	return RefinerVariant{Name: "sdxl-refiner", Text: clip.OpenCLIPBigG14(), UNet: unet.Refiner(), VAE: vae.SDXL(), Sched: s, Pad: "!"}
}

// The refiner's folder components (a diffusers StableDiffusionXLImg2ImgPipeline
// with text_encoder and tokenizer null).
const (
	refinerText      = "text_encoder_2"
	refinerTokenizer = "tokenizer_2"
)

// Refiner is a loaded SDXL refiner: its text encoder, tokenizer, UNet and
// autoencoder, encoder included (img2img starts from an image).
type Refiner struct {
	Variant   RefinerVariant
	Path      string
	Layout    string // LayoutDiffusers or LayoutSingleFile
	Tokenizer *clip.Tokenizer
	Text      *clip.ProjectedEncoder
	UNet      *unet.UNet
	Decoder   *vae.Decoder
	Encoder   *vae.Encoder
	Backend   tensor.Backend
	DType     tensor.DType
	// VAEDType is the autoencoder's dtype: DType, except fp32 for an fp16
	// model whose VAE config has force_upcast (the SDXL VAE overflows in
	// fp16; diffusers' SDXL pipelines upcast it the same way).
	VAEDType tensor.DType
	// UNetFile is the file the UNet's weights came from: what a parameters
	// text's model hash is of (infotext.RefinerCheckpointOf).
	UNetFile string
	files    []*weights.File
}

// Close releases the memory-mapped files (loaded weights stay valid).
func (r *Refiner) Close() error { return closeFiles(r.files) }

// LoadRefiner reads an SDXL refiner from a diffusers folder (text_encoder_2/,
// tokenizer_2/, unet/, vae/, scheduler/) or from a single file
// (sd_xl_refiner_1.0.safetensors: conditioner.embedders.0.model.*,
// model.diffusion_model.*, first_stage_model.*). Of o it uses Backend, DType,
// Tokenizer (required for a single file, which holds none), ConfigDir (a
// folder whose config files describe a single file; else they are inferred
// from its shapes), NoTokenizer and TokenizerSplit. A Stable Diffusion or
// SDXL base checkpoint is refused with an error that says what it is.
func LoadRefiner(path string, o LoadOptions) (*Refiner, error) {
	if o.Backend == nil {
		return nil, errors.New("pipeline: no backend")
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: refiner weights: %w", err)
	}
	r := &Refiner{Path: path, Variant: SDXLRefiner(), Backend: o.Backend, DType: o.DType}
	if info.IsDir() {
		err = r.loadFolder(path, o)
	} else {
		err = r.loadSingleFile(path, o)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// loadFolder reads a diffusers refiner folder.
func (r *Refiner) loadFolder(dir string, o LoadOptions) error {
	r.Layout = LayoutDiffusers
	has := func(component string) bool { return fileExists(filepath.Join(dir, component)) }
	switch {
	case !has(refinerText) && has("text_encoder"):
		return fmt.Errorf("pipeline: %s holds a Stable Diffusion 1.x/2.x model (text_encoder/, no %s/); the refiner is an SDXL refiner folder such as stabilityai/stable-diffusion-xl-refiner-1.0", dir, refinerText)
	case !has(refinerText):
		return fmt.Errorf("pipeline: %s is no SDXL refiner folder: it has no %s/", dir, refinerText)
	case has(filepath.Join("text_encoder", "config.json")):
		return fmt.Errorf("pipeline: %s holds an SDXL base model (text_encoder/ beside %s/); the refiner is stabilityai/stable-diffusion-xl-refiner-1.0 or its like, with only %s/", dir, refinerText, refinerText)
	}
	if err := r.Variant.readConfigs(dir); err != nil {
		return err
	}
	if !o.NoTokenizer {
		tok := o.Tokenizer
		if tok == "" {
			tok = filepath.Join(dir, refinerTokenizer)
		}
		var err error
		if r.Tokenizer, err = loadSplit(tok, r.Variant.Pad, o.TokenizerSplit); err != nil {
			return err
		}
	}
	open := func(component string, names ...string) (*weights.File, error) {
		for _, n := range names {
			p := filepath.Join(dir, component, n)
			if fileExists(p) {
				f, err := weights.Open(p)
				if err == nil {
					r.files = append(r.files, f)
				}
				return f, err
			}
		}
		return nil, fmt.Errorf("pipeline: %s: no %s", filepath.Join(dir, component), strings.Join(names, " or "))
	}
	tf, err := open(refinerText, "model.safetensors", "model.fp16.safetensors")
	if err != nil {
		return err
	}
	uf, err := open("unet", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
	if err != nil {
		return err
	}
	r.UNetFile = uf.Path()
	vf, err := open("vae", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
	if err != nil {
		return err
	}
	return r.build(clip.MapFolder(tf), unet.MapFolder(uf), vae.MapFolder(vf, true))
}

// readConfigs reads text_encoder_2/, unet/, vae/ and (when there) scheduler/
// config files under dir over v.
func (v *RefinerVariant) readConfigs(dir string) (err error) {
	if v.Text, err = clip.LoadConfig(filepath.Join(dir, refinerText, "config.json"), v.Text); err != nil {
		return err
	}
	if v.Text.ProjectionDim < 1 {
		return fmt.Errorf("pipeline: %s: no projection_dim: the refiner's text encoder is a CLIPTextModelWithProjection", filepath.Join(dir, refinerText, "config.json"))
	}
	if v.UNet, err = unet.LoadConfig(filepath.Join(dir, "unet", "config.json"), v.UNet); err != nil {
		return err
	}
	if v.UNet.AdditionEmbedType != unet.TextTime {
		return fmt.Errorf("pipeline: %s: addition_embed_type %q, want %q (an SDXL UNet)", filepath.Join(dir, "unet", "config.json"), v.UNet.AdditionEmbedType, unet.TextTime)
	}
	if v.VAE, err = vae.LoadConfig(filepath.Join(dir, "vae", "config.json"), v.VAE); err != nil {
		return err
	}
	if p := filepath.Join(dir, "scheduler", "scheduler_config.json"); fileExists(p) {
		v.Sched, err = sched.LoadConfig(p, v.Sched)
	}
	return err
}

// LoadRefinerFile is LoadRefiner of a single file already open (one built
// in memory, as bench-engine's random weights); the refiner does not close f.
func LoadRefinerFile(f *weights.File, o LoadOptions) (*Refiner, error) {
	if o.Backend == nil {
		return nil, errors.New("pipeline: no backend")
	}
	r := &Refiner{Path: f.Path(), Variant: SDXLRefiner(), Backend: o.Backend, DType: o.DType, Layout: LayoutSingleFile, UNetFile: f.Path()}
	if err := r.loadFile(f, o); err != nil {
		return nil, err
	}
	return r, nil
}

// loadSingleFile reads sd_xl_refiner_1.0.safetensors or its like.
func (r *Refiner) loadSingleFile(path string, o LoadOptions) error {
	r.Layout = LayoutSingleFile
	r.UNetFile = path
	f, err := weights.Open(path)
	if err != nil {
		return err
	}
	r.files = append(r.files, f)
	return r.loadFile(f, o)
}

// loadFile reads an open single file's text encoder, UNet and autoencoder.
func (r *Refiner) loadFile(f *weights.File, o LoadOptions) (err error) {
	path := f.Path()
	if err := refinerFileKind(f); err != nil {
		return err
	}
	v := &r.Variant
	if o.ConfigDir != "" {
		err = v.readConfigs(o.ConfigDir)
	} else {
		err = v.inferConfigs(f)
	}
	if err != nil {
		return err
	}
	if !o.NoTokenizer {
		if o.Tokenizer == "" {
			return fmt.Errorf("pipeline: %s is a single-file checkpoint, which holds %w: name one (LoadOptions.Tokenizer), the refiner's tokenizer_2/ folder or OpenAI's bpe_simple_vocab_16e6.txt.gz", path, ErrNoTokenizer)
		}
		if r.Tokenizer, err = loadSplit(o.Tokenizer, v.Pad, o.TokenizerSplit); err != nil {
			return err
		}
	}
	return r.build(clip.MapOpenCLIPProjected(f, clip.PrefixRefiner), unet.MapSingleFile(f, v.UNet), vae.MapSingleFile(f, v.VAE, true))
}

// refinerFileKind refuses a single file that is not an SDXL refiner, saying
// what its names show it is.
func refinerFileKind(f *weights.File) error {
	has := func(prefix string) bool {
		for _, n := range f.Names() {
			if strings.HasPrefix(n, prefix) {
				return true
			}
		}
		return false
	}
	switch {
	case has("conditioner.embedders.1.model."):
		return fmt.Errorf("pipeline: %s is an SDXL base checkpoint (conditioner.embedders.1.model.* beside embedders.0); the refiner is sd_xl_refiner_1.0.safetensors or its like", f.Path())
	case has(clip.PrefixRefiner):
		return nil
	case has("cond_stage_model."):
		return fmt.Errorf("pipeline: %s is a Stable Diffusion 1.x/2.x checkpoint (cond_stage_model.*); the refiner is sd_xl_refiner_1.0.safetensors or its like (%s*)", f.Path(), clip.PrefixRefiner)
	}
	return fmt.Errorf("pipeline: %s is no SDXL refiner checkpoint: it has no %s* text encoder", f.Path(), clip.PrefixRefiner)
}

// inferConfigs reads a single file's configs from its names and shapes, with
// the released refiner's conventions for what they do not say (heads of 64
// channels, the SDXL latent scale).
func (v *RefinerVariant) inferConfigs(f *weights.File) (err error) {
	inferred := func(err error) error {
		return fmt.Errorf("pipeline: %s: %w: %w", f.Path(), err, ErrNeedsConfig)
	}
	if v.Text, err = clip.InferProjectedConfig(f, clip.PrefixRefiner); err != nil {
		return inferred(err)
	}
	if v.UNet, err = unet.InferConfig(f, SD2.singleFileHeads); err != nil {
		return inferred(err)
	}
	if v.UNet.AdditionEmbedType != unet.TextTime {
		return inferred(fmt.Errorf("unet: no %slabel_emb (text_time conditioning)", unet.Prefix))
	}
	if v.VAE, err = vae.InferConfig(f); err != nil {
		return inferred(err)
	}
	sdxl := vae.SDXL()
	v.VAE.ScalingFactor, v.VAE.ForceUpcast = sdxl.ScalingFactor, sdxl.ForceUpcast
	v.VAE.DownBlockTypes, v.VAE.UpBlockTypes = sdxl.DownBlockTypes, sdxl.UpBlockTypes
	return nil
}

// build loads the three models and reports every naming or shape problem at once.
func (r *Refiner) build(text, u, v *weights.Mapping) error {
	ts := weights.NewSource("text encoder", text, r.Backend, r.DType)
	us := weights.NewSource("unet", u, r.Backend, r.DType)
	r.VAEDType = r.DType
	if r.DType == tensor.Float16 && r.Variant.VAE.ForceUpcast {
		r.VAEDType = tensor.Float32
	}
	vs := weights.NewSource("vae", v, r.Backend, r.VAEDType)
	r.Text = clip.LoadProjected(ts, r.Variant.Text)
	r.UNet = unet.Load(us, r.Variant.UNet)
	r.Decoder = vae.LoadDecoder(vs, r.Variant.VAE)
	r.Encoder = vae.LoadEncoder(vs, r.Variant.VAE)
	var errs []error
	for _, s := range []*weights.Source{ts, us, vs} {
		if err := s.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pipeline: %s (as %s, %s layout): %w", r.Path, r.Variant.Name, r.Layout, errors.Join(errs...))
	}
	return nil
}
