package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/pipeline"
)

func setupTokenize(fs *pflag.FlagSet) func() error {
	var weightsPath, tokenizer, modelType, prompt string
	fs.StringVar(&weightsPath, "weights", "", "checkpoint (decides the tokenizer's padding; a folder supplies the tokenizer, a single file gets its family's)")
	fs.StringVar(&tokenizer, "tokenizer", "", "tokenizer/ folder or bpe_simple_vocab_16e6.txt.gz")
	fs.StringVar(&modelType, "model-type", "", "override the detected model (sd15, sd21-base, ...)")
	fs.StringVar(&prompt, "prompt", "", "the text to tokenize")
	return func() error {
		if weightsPath == "" && tokenizer == "" {
			return errors.New("tokenize: pass --weights, or --tokenizer with --model-type")
		}
		if weightsPath != "" {
			var err error
			if weightsPath, err = resolveWeights(context.Background(), weightsPath, false, false); err != nil {
				return err
			}
			if tokenizer == "" && isFile(weightsPath) {
				if tokenizer, err = singleFileTokenizer(context.Background(), weightsPath, false, os.Stderr); err != nil {
					return err
				}
			}
		}
		tok, err := pipeline.LoadTokenizer(weightsPath, tokenizer, modelType, clip.SplitDiffusers)
		if err != nil {
			return err
		}
		ids, truncated := tok.Tokenize(prompt)
		enc := json.NewEncoder(os.Stdout)
		return enc.Encode(struct {
			IDs       []int32  `json:"ids"`
			Tokens    []string `json:"tokens"`
			Truncated int      `json:"truncated"`
		}{ids, tok.Tokens(ids), truncated})
	}
}
