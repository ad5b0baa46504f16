package sam

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// The shared positional matrix has two names in SamModel files: the model holds
// it as shared_image_embedding, and its prompt encoder holds the same module as
// shared_embedding, so a checkpoint stores either name (or both, equal).
const (
	sharedPE      = "shared_image_embedding.positional_embedding"
	sharedPEAlias = "prompt_encoder.shared_embedding.positional_embedding"
)

// ConfigFile and WeightsFile are the files of a SamModel folder.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// Model is a loaded SAM: its config and its three parts.
type Model struct {
	Config  Config
	Vision  *VisionEncoder
	Prompt  *PromptEncoder
	Decoder *MaskDecoder
}

// Load reads a SamModel folder (config.json and model.safetensors, transformers'
// layout as on the Hub) into backend b as dtype d. A missing, misshaped or
// unexpected tensor is an error that names it.
func Load(dir string, b tensor.Backend, d tensor.DType) (*Model, error) {
	c, err := LoadConfig(filepath.Join(dir, ConfigFile), ViTBase())
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, WeightsFile)
	f, err := weights.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, binErr := os.Stat(filepath.Join(dir, "pytorch_model.bin")); binErr == nil {
				return nil, fmt.Errorf("sam: %s has only pytorch_model.bin; a model.safetensors is needed (pickles are not read)", dir)
			}
		}
		return nil, fmt.Errorf("sam: %w", err)
	}
	defer f.Close()
	m, err := MapWeights(f)
	if err != nil {
		return nil, err
	}
	src := weights.NewSource("sam", m, b, d)
	model := Build(src, c)
	if err := src.Err(); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return model, nil
}

// Build constructs the model from w (rooted at the file's top). Call w.Err() afterwards.
func Build(w *weights.Source, c Config) *Model {
	return &Model{
		Config:  c,
		Vision:  LoadVisionEncoder(w.Sub("vision_encoder"), c),
		Prompt:  LoadPromptEncoder(w, c),
		Decoder: LoadMaskDecoder(w.Sub("mask_decoder"), c),
	}
}

// MapWeights serves a SamModel file's tensors under their own names, with the
// positional matrix under sharedPE whichever name it is stored as. The mask
// prompt's weights (prompt_encoder.mask_embed.*) are skipped: see the package doc.
func MapWeights(f *weights.File) (*weights.Mapping, error) {
	_, hasShared := f.Info(sharedPE)
	_, hasAlias := f.Info(sharedPEAlias)
	if hasShared && hasAlias {
		a, ia, err := f.Raw(sharedPE)
		if err != nil {
			return nil, fmt.Errorf("sam: %w", err)
		}
		b, ib, err := f.Raw(sharedPEAlias)
		if err != nil {
			return nil, fmt.Errorf("sam: %w", err)
		}
		if ia.DType != ib.DType || !ia.Shape.Equal(ib.Shape) || !bytes.Equal(a, b) {
			return nil, fmt.Errorf("sam: %s: %s and %s hold different values; they are one matrix", f.Path(), sharedPE, sharedPEAlias)
		}
	}
	return weights.MapFile(f, "", func(name string) string {
		switch {
		case strings.HasPrefix(name, "prompt_encoder.mask_embed."):
			return ""
		case name == sharedPEAlias && hasShared:
			return "" // the same matrix, checked equal above
		case name == sharedPEAlias:
			return sharedPE
		}
		return name
	}), nil
}
