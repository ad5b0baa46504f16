package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/rfnet/rfnet-native/pipeline"
)

// tokenizerSource is a folder of a Hub repository that holds a CLIP tokenizer.
type tokenizerSource struct{ repo, dir string }

func (s tokenizerSource) String() string { return path.Join(s.repo, s.dir) }

// tokenizerSources are, per family, the folders a bare single-file
// checkpoint's tokenizer is taken from, in diffusers' order (from_single_file
// looks in the cache first): the first one the cache holds, else the first
// one downloaded.
var tokenizerSources = map[pipeline.Family][]tokenizerSource{
	pipeline.SD1: {{"stable-diffusion-v1-5/stable-diffusion-v1-5", "tokenizer"}, {"CompVis/stable-diffusion-v1-4", "tokenizer"}, {"openai/clip-vit-large-patch14", ""}},
	pipeline.SD2: {{"stabilityai/stable-diffusion-2-1", "tokenizer"}, {"stabilityai/stable-diffusion-2-1-base", "tokenizer"}, {"stabilityai/stable-diffusion-2", "tokenizer"}},
}

// The files of a Hugging Face CLIP tokenizer: the two it cannot do without,
// and the two that carry its special tokens when the repository has them.
var (
	tokenizerFiles         = []string{"vocab.json", "merges.txt"}
	tokenizerOptionalFiles = []string{"special_tokens_map.json", "tokenizer_config.json"}
)

// singleFileTokenizer finds the tokenizer of the single-file checkpoint
// weights, which holds none, of the given family (pipeline.LoadOptions'
// FindTokenizer): its family's tokenizer folder from the Hugging Face cache,
// or downloaded (the tokenizer files alone). The padding stays the family's
// (pipeline's Variant.Pad), whichever folder supplies the vocabulary.
func singleFileTokenizer(ctx context.Context, weights string, family pipeline.Family, offline bool, log io.Writer) (string, error) {
	c, err := hubClient(offline)
	if err != nil {
		return "", err
	}
	sources := tokenizerSources[family]
	for _, s := range sources {
		if dir, ok := c.Cached(s.repo, "main", s.dir, tokenizerFiles); ok {
			fmt.Fprintf(log, "rfnet-native: %s holds no tokenizer: using the %s tokenizer of %s from the Hugging Face cache (--tokenizer names another)\n", weights, family, s)
			return dir, nil
		}
	}
	if c.Offline {
		var names []string
		for _, s := range sources {
			names = append(names, s.String())
		}
		return "", fmt.Errorf("%s is a single-file checkpoint, which holds no tokenizer, and the Hugging Face cache has none of %s (offline): pass --tokenizer (a tokenizer/ folder or bpe_simple_vocab_16e6.txt.gz), or run `rfnet-native download --tokenizer-only %s` on a machine with internet",
			weights, strings.Join(names, ", "), sources[0].repo)
	}
	fmt.Fprintf(log, "rfnet-native: %s holds no tokenizer: fetching the %s tokenizer of %s (its tokenizer files only; --tokenizer names another)\n", weights, family, sources[0])
	return c.FetchFolder(ctx, sources[0].repo, "main", sources[0].dir, tokenizerFiles, tokenizerOptionalFiles)
}

// tokenizerDir is the folder of repo that holds its tokenizer: the one
// tokenizerSources names, else diffusers' tokenizer/.
func tokenizerDir(repo string) string {
	for _, sources := range tokenizerSources {
		for _, s := range sources {
			if s.repo == repo {
				return s.dir
			}
		}
	}
	return "tokenizer"
}

// isFile reports whether path is a file (a single-file checkpoint), not a folder.
func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}
