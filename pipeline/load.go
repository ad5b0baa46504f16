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
	// a single-file checkpoint needs it or FindTokenizer, a folder has its own.
	Tokenizer string
	// FindTokenizer, when Tokenizer is empty, finds the tokenizer of a
	// single-file checkpoint (which holds none) for the family detected from
	// it: the command line looks in the Hugging Face cache, then downloads.
	FindTokenizer func(Family) (string, error)
	// ConfigDir is a diffusers-style folder whose unet/, vae/, text_encoder/ and
	// scheduler/ config files describe a single-file checkpoint (optional: the
	// released models' configs are inferred from names and shapes).
	ConfigDir string
	// Backend and DType say where the weights go and in which compute dtype.
	Backend tensor.Backend
	DType   tensor.DType
	// NoTokenizer skips the tokenizer (inspect).
	NoTokenizer bool
	// VAEEncoder builds the autoencoder's encoder too (Model.Encoder, about
	// 34M parameters at SD's size), for the features that start from an
	// image (img2img, the SDXL refiner). Without it the encoder's tensors
	// are skipped: not loaded, not counted in Components, not reported
	// unused.
	VAEEncoder bool
	// TokenizerSplit is how prompts are cut around the tokenizer's special
	// tokens; the zero value is diffusers' (clip.SplitDiffusers).
	TokenizerSplit clip.Split
}

// Model is a loaded Stable Diffusion checkpoint.
type Model struct {
	Variant    Variant
	Path       string
	Layout     string // LayoutDiffusers or LayoutSingleFile
	Tokenizer  *clip.Tokenizer
	Text       *clip.TextEncoder
	UNet       *unet.UNet
	Decoder    *vae.Decoder
	Encoder    *vae.Encoder // nil unless loaded with LoadOptions.VAEEncoder
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
func (m *Model) Close() error { return closeFiles(m.files) }

// closeFiles closes the memory-mapped files of a model (Model, Refiner).
func closeFiles(files []*weights.File) error {
	var errs []error
	for _, f := range files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// Load reads a diffusers folder or a single-file checkpoint.
func Load(path string, o LoadOptions) (*Model, error) {
	if o.Backend == nil {
		return nil, errors.New("pipeline: no backend")
	}
	c, err := detect(path, o)
	if err != nil {
		return nil, err
	}
	m := &Model{Path: path, Backend: o.Backend, DType: o.DType}
	if c.file != nil {
		m.files = append(m.files, c.file)
	}
	if err := m.load(c, o); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// LoadFile builds a model from an original-layout checkpoint that is already
// open, such as one held in memory (weights.FromBytes). Close leaves f open.
func LoadFile(f *weights.File, o LoadOptions) (*Model, error) {
	if o.Backend == nil {
		return nil, errors.New("pipeline: no backend")
	}
	c, err := detectFile(f, o)
	if err != nil {
		return nil, err
	}
	m := &Model{Path: f.Path(), Backend: o.Backend, DType: o.DType}
	if err := m.load(c, o); err != nil {
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

// load builds the detected checkpoint c: its tokenizer (unless
// o.NoTokenizer), which the family alone decides, then, with the rest of the
// variant read, its three models.
func (m *Model) load(c checkpoint, o LoadOptions) (err error) {
	if !o.NoTokenizer {
		if m.Tokenizer, err = c.loadTokenizer(o); err != nil {
			return err
		}
	}
	if err := c.readArchitecture(o); err != nil {
		return err
	}
	m.Layout, m.Variant = c.layout, c.variant
	if c.layout == LayoutSingleFile {
		return m.buildSingleFile(c.file, o.VAEEncoder)
	}
	return m.buildFolder(c.path, o.VAEEncoder)
}

// buildFolder builds a diffusers folder's models from text_encoder/, unet/ and
// vae/ (the VAE's encoder too with encoder).
func (m *Model) buildFolder(dir string, encoder bool) error {
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
	return m.build(clip.MapFolder(tf), unet.MapFolder(uf), vae.MapFolder(vf, encoder), encoder,
		map[string]*weights.File{"text encoder": tf, "unet": uf, "vae": vf})
}

// buildSingleFile builds an original-layout checkpoint's models
// (cond_stage_model.*, model.diffusion_model.*, first_stage_model.*; the VAE's
// encoder too with encoder).
func (m *Model) buildSingleFile(f *weights.File, encoder bool) error {
	v := m.Variant
	text := clip.MapCLIP(f)
	if v.Family == SD2 {
		text = clip.MapOpenCLIP(f, v.Text.NumHiddenLayers)
	}
	return m.build(text, unet.MapSingleFile(f, v.UNet), vae.MapSingleFile(f, v.VAE, encoder), encoder,
		map[string]*weights.File{"text encoder": f, "unet": f, "vae": f})
}

// build loads the three models (the VAE's encoder with encoder, whose
// tensors v then serves) and reports every naming or shape problem at once.
func (m *Model) build(text, u, v *weights.Mapping, encoder bool, files map[string]*weights.File) error {
	ts := weights.NewSource("text encoder", text, m.Backend, m.DType)
	us := weights.NewSource("unet", u, m.Backend, m.DType)
	vs := weights.NewSource("vae", v, m.Backend, m.DType)
	m.Text = clip.Load(ts, m.Variant.Text)
	m.UNet = unet.Load(us, m.Variant.UNet)
	m.Decoder = vae.LoadDecoder(vs, m.Variant.VAE)
	if encoder {
		m.Encoder = vae.LoadEncoder(vs, m.Variant.VAE)
	}
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
