package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// LoadOptions says how to read a checkpoint. The zero value detects everything.
type LoadOptions struct {
	// ModelType names a variant (sd15, sd21-base, sd21, ...) instead of detecting the family.
	ModelType string
	// Prediction overrides the prediction type (epsilon or v).
	Prediction string
	// Tokenizer is a diffusers tokenizer/ folder or bpe_simple_vocab_16e6.txt.gz;
	// single-file checkpoints need it, folders have their own.
	Tokenizer string
	// ConfigDir is a diffusers-style folder whose unet/, vae/, text_encoder/ and
	// scheduler/ config files describe a single-file checkpoint (optional: the
	// released models' configs are inferred from names and shapes).
	ConfigDir string
	// Backend and DType say where the weights go and in which compute dtype.
	Backend tensor.Backend
	DType   tensor.DType
	// NoTokenizer skips the tokenizer (inspect).
	NoTokenizer bool
	// TokenizerSplit is how prompts are cut around the tokenizer's special
	// tokens; the zero value is diffusers' (clip.SplitDiffusers).
	TokenizerSplit clip.Split
}

// Model is a loaded Stable Diffusion checkpoint.
type Model struct {
	Variant    Variant
	Path       string
	Layout     string // "diffusers" or "single-file"
	Tokenizer  *clip.Tokenizer
	Text       *clip.TextEncoder
	UNet       *unet.UNet
	Decoder    *vae.Decoder
	Encoder    *vae.Encoder
	Backend    tensor.Backend
	DType      tensor.DType
	Components []Component
	files      []*weights.File
	// mappings are the components' weights by name ("unet", "vae", "text
	// encoder"), for the non-finite diagnosis (finite.go).
	mappings map[string]*weights.Mapping
}

// Component describes one model's weights, for inspect.
type Component struct {
	Name       string   `json:"name"`
	File       string   `json:"file"`
	Parameters int64    `json:"parameters"`
	DTypes     []string `json:"dtypes"`
}

// Close releases the memory-mapped files (loaded weights stay valid).
func (m *Model) Close() error {
	var errs []error
	for _, f := range m.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// Load reads a diffusers folder or a single-file checkpoint.
func Load(path string, o LoadOptions) (*Model, error) {
	if o.Backend == nil {
		return nil, errors.New("pipeline: no backend")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: weights: %w", err)
	}
	m := &Model{Path: path, Backend: o.Backend, DType: o.DType}
	if fi.IsDir() {
		err = m.loadFolder(path, o)
	} else {
		err = m.loadSingleFile(path, o)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Inspect builds the model on o.Backend (tensor.Meta for a check that reads
// no weights) without a tokenizer.
func Inspect(path string, o LoadOptions) (*Model, error) {
	o.NoTokenizer = true
	return Load(path, o)
}

func errNoTokenizer(path string) error {
	return fmt.Errorf("pipeline: %s is a single-file checkpoint, which holds no tokenizer: pass --tokenizer with a diffusers tokenizer/ folder (vocab.json and merges.txt) or OpenAI's bpe_simple_vocab_16e6.txt.gz", path)
}

// LoadTokenizer reads the tokenizer a checkpoint uses without loading weights:
// a folder's own tokenizer/ unless tokenizer is given, with the padding of the
// checkpoint's family (or of modelType; with neither, SD 1.x's), cutting
// prompts as split says.
func LoadTokenizer(weightsPath, tokenizer, modelType string, split clip.Split) (*clip.Tokenizer, error) {
	v := SD15()
	if modelType != "" {
		var err error
		if v, err = VariantByName(modelType); err != nil {
			return nil, err
		}
	}
	if weightsPath != "" {
		fi, err := os.Stat(weightsPath)
		if err != nil {
			return nil, fmt.Errorf("pipeline: weights: %w", err)
		}
		switch {
		case fi.IsDir():
			if tokenizer == "" {
				tokenizer = filepath.Join(weightsPath, "tokenizer")
			}
			if modelType == "" {
				if text, err := clip.LoadConfig(filepath.Join(weightsPath, "text_encoder", "config.json"), clip.ViTL14()); err == nil {
					v = familyVariant(text)
				}
			}
		default:
			if tokenizer == "" {
				return nil, errNoTokenizer(weightsPath)
			}
			if modelType == "" {
				if v, err = singleFileBase(weightsPath); err != nil {
					return nil, err
				}
			}
		}
	}
	tok, err := clip.LoadTokenizer(tokenizer, v.Pad)
	if err != nil {
		return nil, err
	}
	return tok.WithSplit(split), nil
}

// loadFolder reads a diffusers folder: model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/.
func (m *Model) loadFolder(dir string, o LoadOptions) error {
	m.Layout = "diffusers"
	if _, err := os.Stat(filepath.Join(dir, "unet", "config.json")); err != nil {
		return fmt.Errorf("pipeline: %s is not a diffusers folder (no unet/config.json)", dir)
	}
	v, err := m.folderVariant(dir, o)
	if err != nil {
		return err
	}
	m.Variant = v
	if !o.NoTokenizer {
		tokPath := filepath.Join(dir, "tokenizer")
		if o.Tokenizer != "" {
			tokPath = o.Tokenizer
		}
		if m.Tokenizer, err = clip.LoadTokenizer(tokPath, v.Pad); err != nil {
			return err
		}
		m.Tokenizer = m.Tokenizer.WithSplit(o.TokenizerSplit)
	}
	open := func(component string, names ...string) (*weights.File, error) {
		for _, n := range names {
			p := filepath.Join(dir, component, n)
			if _, err := os.Stat(p); err == nil {
				f, err := weights.Open(p)
				if err == nil {
					m.files = append(m.files, f)
				}
				return f, err
			}
		}
		if pickles, _ := filepath.Glob(filepath.Join(dir, component, "*.bin")); len(pickles) > 0 {
			return nil, fmt.Errorf("pipeline: %s holds only %s: rfnet-native reads .safetensors weights, never pickles (convert them with diffusers' save_pretrained(..., safe_serialization=True))",
				filepath.Join(dir, component), filepath.Base(pickles[0]))
		}
		return nil, fmt.Errorf("pipeline: %s: no %s", filepath.Join(dir, component), strings.Join(names, " or "))
	}
	tf, err := open("text_encoder", "model.safetensors", "model.fp16.safetensors")
	if err != nil {
		return err
	}
	uf, err := open("unet", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
	if err != nil {
		return err
	}
	vf, err := open("vae", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
	if err != nil {
		return err
	}
	return m.build(clip.MapFolder(tf), unet.MapFolder(uf), vae.MapFolder(vf), map[string]*weights.File{"text encoder": tf, "unet": uf, "vae": vf})
}

// folderVariant reads the folder's configs over the variant the family implies.
func (m *Model) folderVariant(dir string, o LoadOptions) (Variant, error) {
	text, err := clip.LoadConfig(filepath.Join(dir, "text_encoder", "config.json"), clip.ViTL14())
	if err != nil {
		return Variant{}, err
	}
	v, err := withModelType(familyVariant(text), o.ModelType, dir, filepath.Join("text_encoder", "config.json")+" (hidden_act "+text.HiddenAct+")")
	if err != nil {
		return Variant{}, err
	}
	if err := readConfigDir(&v, dir); err != nil {
		return Variant{}, err
	}
	return withPrediction(v, o.Prediction)
}

// withModelType is --model-type over the detected variant v: a variant of
// the same family (a name of the other family would load the wrong text
// encoder and tokenizer padding, silently), or v when none is named. path and
// evidence say where the family was seen.
func withModelType(v Variant, modelType, path, evidence string) (Variant, error) {
	if modelType == "" {
		return v, nil
	}
	want, err := VariantByName(modelType)
	if err != nil {
		return Variant{}, err
	}
	if want.Family != v.Family {
		return Variant{}, fmt.Errorf("pipeline: --model-type %s is an %s model, but %s holds an %s text encoder (%s); choose an %s type",
			modelType, want.Family, path, v.Family, evidence, v.Family)
	}
	return want, nil
}

func withPrediction(v Variant, p string) (Variant, error) {
	if p == "" {
		return v, nil
	}
	pred, err := sched.ParsePrediction(p)
	if err != nil {
		return Variant{}, err
	}
	v.Sched.PredictionType = pred
	return v, nil
}

// LoadFile builds a model from an original-layout checkpoint that is already
// open, such as one held in memory (weights.FromBytes). Close leaves f open.
func LoadFile(f *weights.File, o LoadOptions) (*Model, error) {
	if o.Backend == nil {
		return nil, errors.New("pipeline: no backend")
	}
	m := &Model{Path: f.Path(), Backend: o.Backend, DType: o.DType, Layout: "single-file"}
	if err := m.buildSingleFile(f, o); err != nil {
		return nil, err
	}
	return m, nil
}

// loadSingleFile reads an original-layout checkpoint (model.diffusion_model.*,
// first_stage_model.*, cond_stage_model.*).
func (m *Model) loadSingleFile(path string, o LoadOptions) error {
	m.Layout = "single-file"
	f, err := weights.Open(path)
	if err != nil {
		return err
	}
	m.files = append(m.files, f)
	return m.buildSingleFile(f, o)
}

func (m *Model) buildSingleFile(f *weights.File, o LoadOptions) error {
	path := f.Path()
	v, err := singleFileVariant(f, o)
	if err != nil {
		return err
	}
	m.Variant = v
	if !o.NoTokenizer {
		if o.Tokenizer == "" {
			return errNoTokenizer(path)
		}
		if m.Tokenizer, err = clip.LoadTokenizer(o.Tokenizer, v.Pad); err != nil {
			return err
		}
		m.Tokenizer = m.Tokenizer.WithSplit(o.TokenizerSplit)
	}
	text := clip.MapCLIP(f)
	if v.Family == SD2 {
		text = clip.MapOpenCLIP(f, v.Text.NumHiddenLayers)
	}
	return m.build(text, unet.MapSingleFile(f, v.UNet), vae.MapSingleFile(f, v.VAE), map[string]*weights.File{"text encoder": f, "unet": f, "vae": f})
}

// singleFileVariant detects the family from the text encoder's names and reads
// the architecture from shapes (or from ConfigDir).
func singleFileVariant(f *weights.File, o LoadOptions) (Variant, error) {
	text, err := clip.InferConfig(f)
	if err != nil {
		return Variant{}, fmt.Errorf("pipeline: %s does not look like a Stable Diffusion checkpoint: %w", f.Path(), err)
	}
	v, err := withModelType(familyVariant(text), o.ModelType, f.Path(), familyEvidence(familyVariant(text).Family))
	if err != nil {
		return Variant{}, err
	}
	if o.ConfigDir != "" {
		if err := readConfigDir(&v, o.ConfigDir); err != nil {
			return Variant{}, err
		}
		return withPrediction(v, o.Prediction)
	}
	v.Text = text
	// Shapes tell channels and layers, not every choice of a config (the
	// norm groups, for one): a checkpoint of another architecture needs its
	// config files.
	inferred := func(err error) error {
		return fmt.Errorf("pipeline: %s: %w (its architecture was read from the tensor shapes: pass --config DIR, a diffusers-style folder with its unet/, vae/ and text_encoder/ config.json)", f.Path(), err)
	}
	if v.UNet, err = unet.InferConfig(f); err != nil {
		return Variant{}, inferred(err)
	}
	v.UNet.UpcastAttention = v.Name == "sd21"
	if v.VAE, err = vae.InferConfig(f); err != nil {
		return Variant{}, inferred(err)
	}
	return withPrediction(v, o.Prediction)
}

// familyVariant is the variant a text encoder's config implies: OpenCLIP
// ViT-H (GELU) is SD 2.x, taken as SD 2.1-base; CLIP ViT-L (quick GELU) is
// SD 1.x, taken as SD 1.5. The one place the family is decided.
func familyVariant(text clip.Config) Variant {
	if text.HiddenAct == "gelu" {
		return SD21Base()
	}
	return SD15()
}

// SingleFileFamily is the family of an original-layout checkpoint, from its
// text encoder's tensor names, without loading it: what a caller needs to find
// the tokenizer a bare single file lacks.
func SingleFileFamily(path string) (Family, error) {
	v, err := singleFileBase(path)
	return v.Family, err
}

// singleFileBase is the variant a single file's text encoder implies (see
// familyVariant), read from its header alone.
func singleFileBase(path string) (Variant, error) {
	f, err := weights.Open(path)
	if err != nil {
		return Variant{}, err
	}
	defer f.Close()
	text, err := clip.InferConfig(f)
	if err != nil {
		return Variant{}, fmt.Errorf("pipeline: %s does not look like a Stable Diffusion checkpoint: %w", path, err)
	}
	return familyVariant(text), nil
}

// readConfigDir reads the config files of a diffusers-style folder over v.
func readConfigDir(v *Variant, dir string) (err error) {
	if v.Text, err = clip.LoadConfig(filepath.Join(dir, "text_encoder", "config.json"), v.Text); err != nil {
		return err
	}
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

func familyEvidence(f Family) string {
	if f == SD2 {
		return clip.PrefixOpenCLIP + "*"
	}
	return clip.PrefixCLIP + "*"
}

// build loads the three models and reports every naming or shape problem at once.
func (m *Model) build(text, u, v *weights.Mapping, files map[string]*weights.File) error {
	ts := weights.NewSource("text encoder", text, m.Backend, m.DType)
	us := weights.NewSource("unet", u, m.Backend, m.DType)
	vs := weights.NewSource("vae", v, m.Backend, m.DType)
	m.Text = clip.Load(ts, m.Variant.Text)
	m.UNet = unet.Load(us, m.Variant.UNet)
	m.Decoder = vae.LoadDecoder(vs, m.Variant.VAE)
	m.Encoder = vae.LoadEncoder(vs, m.Variant.VAE)
	var errs []error
	for _, s := range []*weights.Source{ts, us, vs} {
		if err := s.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pipeline: %s (as %s, %s layout): %w", m.Path, m.Variant.Name, m.Layout, errors.Join(errs...))
	}
	m.mappings = map[string]*weights.Mapping{"text encoder": text, "unet": u, "vae": v}
	for _, c := range []struct {
		name string
		mp   *weights.Mapping
	}{{"text encoder", text}, {"unet", u}, {"vae", v}} {
		m.Components = append(m.Components, describe(c.name, files[c.name], c.mp))
	}
	return nil
}

func describe(name string, f *weights.File, mp *weights.Mapping) Component {
	c := Component{Name: name, File: f.Path()}
	seen := map[string]bool{}
	for _, n := range mp.Canonical() {
		ref, _ := mp.Lookup(n)
		c.Parameters += int64(ref.Shape.Numel())
		info, _ := f.Info(ref.Stored)
		if !seen[info.DType] {
			seen[info.DType] = true
			c.DTypes = append(c.DTypes, info.DType)
		}
	}
	return c
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Hash is the SHA-256 of the model's weight files (in a fixed order), as hex:
// it identifies the checkpoint in benchmark metadata. It reads every byte once.
func (m *Model) Hash() (string, error) {
	h := sha256.New()
	seen := map[string]bool{}
	for _, f := range m.files {
		if seen[f.Path()] {
			continue
		}
		seen[f.Path()] = true
		r, err := os.Open(f.Path())
		if err != nil {
			return "", fmt.Errorf("pipeline: hash: %w", err)
		}
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return "", fmt.Errorf("pipeline: hash %s: %w", f.Path(), err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
