package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/pipeline"
)

// registerTokenizerSplit adds --tokenizer-split, which tokenize and every
// command that loads a checkpoint take.
func registerTokenizerSplit(fs *pflag.FlagSet, split *string) {
	fs.StringVar(split, "tokenizer-split", clip.SplitDiffusers.String(),
		`how a prompt is cut around the tokenizer's special tokens: diffusers (as transformers' CLIPTokenizer in diffusers: with SD 2.x's "!" padding every "!" is token 0, "! !! !!!" is 0 0 0 0 0 0) or open-clip (as open_clip, which SD 2.x was trained with: "! !! !!!" is 256 748 995); SD 1.x prompts differ only where they spell out a special token`)
}

// parseTokenizerSplit reads --tokenizer-split.
func parseTokenizerSplit(name string) (clip.Split, error) {
	s, err := clip.ParseSplit(name)
	if err != nil {
		return 0, fmt.Errorf("--tokenizer-split: %w", err)
	}
	return s, nil
}

// tokenization is what tokenize prints for one split.
type tokenization struct {
	Split     string   `json:"split"`
	IDs       []int32  `json:"ids"`
	Tokens    []string `json:"tokens"`
	Truncated int      `json:"truncated"`
}

func tokenizeWith(tok *clip.Tokenizer, prompt string) tokenization {
	ids, truncated := tok.Tokenize(prompt)
	return tokenization{tok.Split().String(), ids, tok.Tokens(ids), truncated}
}

func setupTokenize(fs *pflag.FlagSet) func() error {
	var weightsPath, tokenizer, modelType, prompt, split string
	fs.StringVar(&weightsPath, "weights", "", "checkpoint (decides the tokenizer's padding; a folder supplies the tokenizer, a single file gets its family's)")
	fs.StringVar(&tokenizer, "tokenizer", "", "tokenizer/ folder or bpe_simple_vocab_16e6.txt.gz")
	fs.StringVar(&modelType, "model-type", "", "override the detected model (sd15, sd21-base, ...)")
	fs.StringVar(&prompt, "prompt", "", "the text to tokenize")
	registerTokenizerSplit(fs, &split)
	return func() error {
		if weightsPath == "" && tokenizer == "" {
			return errors.New("tokenize: pass --weights, or --tokenizer with --model-type")
		}
		s, err := parseTokenizerSplit(split)
		if err != nil {
			return err
		}
		if weightsPath != "" {
			if weightsPath, err = resolveWeights(context.Background(), weightsPath, false, false); err != nil {
				return err
			}
		}
		tok, err := pipeline.LoadTokenizer(weightsPath, pipeline.LoadOptions{ModelType: modelType, Tokenizer: tokenizer, TokenizerSplit: s,
			FindTokenizer: func(f pipeline.Family) (string, error) {
				return singleFileTokenizer(context.Background(), weightsPath, f, false, os.Stderr)
			}})
		if err != nil {
			return loadFlagError(err)
		}
		// The other split's ids too when they differ, so that a prompt
		// with "!" for SD 2.x shows what the choice changes.
		out := struct {
			tokenization
			OtherSplit *tokenization `json:"other_split,omitempty"`
		}{tokenization: tokenizeWith(tok, prompt)}
		other := clip.SplitOpenCLIP
		if s == clip.SplitOpenCLIP {
			other = clip.SplitDiffusers
		}
		if o := tokenizeWith(tok.WithSplit(other), prompt); !slices.Equal(o.IDs, out.IDs) {
			out.OtherSplit = &o
		}
		return json.NewEncoder(os.Stdout).Encode(out)
	}
}
