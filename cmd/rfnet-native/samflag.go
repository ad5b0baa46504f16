package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/rfnet/rfnet-native/hub"
	"github.com/rfnet/rfnet-native/sam"
	"github.com/rfnet/rfnet-native/tensor"
)

// samRepo is the SAM RFNet's authors use (SamModel.from_pretrained), which
// generate picks up from the Hugging Face cache without --sam.
const samRepo = "facebook/sam-vit-base"

// samFiles are what a SamModel folder needs: never its pytorch_model.bin.
var samFiles = []string{sam.ConfigFile, sam.WeightsFile}

// resolveSAM turns --sam into a SamModel folder: an existing folder as it is;
// a Hub name (org/name[@revision] or sam-vit-base) through the Hugging Face
// cache, fetching only config.json and model.safetensors.
func resolveSAM(ctx context.Context, name string, offline bool) (string, error) {
	fi, err := os.Stat(name)
	switch {
	case err == nil && !fi.IsDir():
		return "", fmt.Errorf("--sam %s is a file: want a SamModel folder (%s and %s) or a Hub name such as sam-vit-base", name, sam.ConfigFile, sam.WeightsFile)
	case err == nil:
		return name, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("--sam %s: %w", name, err)
	}
	ref, ok, err := hub.ParseRef(name)
	if err != nil {
		return "", fmt.Errorf("--sam: %w", err)
	}
	if !ok || ref.File != "" {
		return "", fmt.Errorf("--sam %s: no such folder, and not a Hub repository (org/name[@revision] or sam-vit-base)", name)
	}
	c, err := hubClient(offline)
	if err != nil {
		return "", err
	}
	dir, err := c.FetchFolder(ctx, ref.Repo, ref.Revision, "", samFiles, nil)
	if err != nil {
		return "", fmt.Errorf("--sam %s: %w", name, err)
	}
	return dir, nil
}

// cachedSAM is the folder of facebook/sam-vit-base when the Hugging Face
// cache holds its two files; it never touches the network.
func cachedSAM() (string, bool) {
	c, err := hub.FromEnv()
	if err != nil {
		return "", false
	}
	return c.Cached(samRepo, "main", "", samFiles)
}

// loadSAM resolves and loads --sam onto backend b as dtype d.
func loadSAM(ctx context.Context, name string, offline bool, b tensor.Backend, d tensor.DType) (*sam.Model, error) {
	dir, err := resolveSAM(ctx, name, offline)
	if err != nil {
		return nil, err
	}
	m, err := sam.Load(dir, b, d)
	if err != nil {
		return nil, fmt.Errorf("--sam %s: %w", name, err)
	}
	return m, nil
}

// loadSAM is the SAM of an RFNet run: --sam, else facebook/sam-vit-base from
// the Hugging Face cache, else none, which log is told once (the masks then
// come from the attention, §8.2).
func (f *rfnetFlags) loadSAM(b tensor.Backend, d tensor.DType, offline bool, log io.Writer) (*sam.Model, error) {
	return rfnetSAM(f.sam, b, d, offline, log)
}

// rfnetSAM is loadSAM of --sam name (generate's and serve's).
func rfnetSAM(name string, b tensor.Backend, d tensor.DType, offline bool, log io.Writer) (*sam.Model, error) {
	if name == "" {
		dir, ok := cachedSAM()
		if !ok {
			fmt.Fprintf(log, "rfnet-native: no SAM (--sam, or %s in the Hugging Face cache): the masks come from the attention (§8.2)\n", samRepo)
			return nil, nil
		}
		fmt.Fprintf(log, "rfnet-native: masks by SAM from %s (§8.1)\n", dir)
		name = dir
	}
	return loadSAM(context.Background(), name, offline, b, d)
}
