package pipeline

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rfnet/rfnet-native/clip"
)

// ErrNoTokenizer is wrapped when a single-file checkpoint, which holds no
// tokenizer, is loaded with neither LoadOptions.Tokenizer nor FindTokenizer.
var ErrNoTokenizer = errors.New("no tokenizer")

// LoadTokenizer reads the tokenizer of the checkpoint at path without loading
// its weights (o.Tokenizer, a folder's own tokenizer/, or what
// o.FindTokenizer finds for a single file), with the padding of the
// checkpoint's family or of o.ModelType's. With path "", it reads o.Tokenizer
// with the padding of o.ModelType (SD 1.x's when that is empty too).
func LoadTokenizer(path string, o LoadOptions) (*clip.Tokenizer, error) {
	if path == "" {
		v := SD15()
		if o.ModelType != "" {
			var err error
			if v, err = VariantByName(o.ModelType); err != nil {
				return nil, err
			}
		}
		if o.Tokenizer == "" {
			return nil, errors.New("pipeline: no checkpoint and no tokenizer to read")
		}
		return loadSplit(o.Tokenizer, v.Pad, o.TokenizerSplit)
	}
	// The family alone decides the padding: the architecture, which a
	// single file's shapes may not settle without its config files, is not
	// read.
	c, err := detect(path, o)
	if err != nil {
		return nil, err
	}
	defer c.close()
	return c.loadTokenizer(o)
}

// loadTokenizer reads c's tokenizer with its family's padding, from
// tokenizerPath, cutting prompts as o.TokenizerSplit says.
func (c checkpoint) loadTokenizer(o LoadOptions) (*clip.Tokenizer, error) {
	path, err := c.tokenizerPath(o)
	if err != nil {
		return nil, err
	}
	return loadSplit(path, c.variant.Pad, o.TokenizerSplit)
}

// loadSplit reads the tokenizer at path with padding pad, cutting prompts as
// split says.
func loadSplit(path, pad string, split clip.Split) (*clip.Tokenizer, error) {
	t, err := clip.LoadTokenizer(path, pad)
	if err != nil {
		return nil, err
	}
	return t.WithSplit(split), nil
}

// tokenizerPath is where c's tokenizer comes from: o.Tokenizer when given,
// else a folder's own tokenizer/, else (a single file holds none) what
// o.FindTokenizer finds for c's family.
func (c checkpoint) tokenizerPath(o LoadOptions) (string, error) {
	switch {
	case o.Tokenizer != "":
		return o.Tokenizer, nil
	case c.layout == LayoutDiffusers:
		return filepath.Join(c.path, "tokenizer"), nil
	case o.FindTokenizer != nil:
		return o.FindTokenizer(c.variant.Family)
	}
	return "", fmt.Errorf("pipeline: %s is a single-file checkpoint, which holds %w: name one (LoadOptions.Tokenizer), a diffusers tokenizer/ folder (vocab.json and merges.txt) or OpenAI's bpe_simple_vocab_16e6.txt.gz", c.path, ErrNoTokenizer)
}
