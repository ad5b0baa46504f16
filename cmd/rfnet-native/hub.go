package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/hub"
)

// hubClient is the Hub client of the environment (HF_HOME, HF_TOKEN,
// HF_ENDPOINT, HF_HUB_OFFLINE), with a progress bar per downloaded file.
func hubClient(offline bool) *hub.Client {
	c := hub.FromEnv()
	c.Offline = c.Offline || offline
	c.Log = os.Stderr
	c.Progress = func(name string, size int64) io.Writer {
		return progressbar.DefaultBytes(size, "downloading "+name)
	}
	return c
}

// resolveWeights turns --weights into a local path: an existing file or
// folder as it is; a Hub name (org/name[@revision], hf://..., or an alias)
// through the Hugging Face cache, downloading what is missing.
func resolveWeights(name string, offline, preferFP16 bool) (string, error) {
	if _, err := os.Stat(name); err == nil {
		return name, nil
	}
	ref, ok, err := hub.ParseRef(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("--weights %s: no such file or folder, and not a Hub name (org/name[@revision], hf://org/name/file.safetensors, or one of %s)", name, aliasNames())
	}
	files, err := hubClient(offline).Resolve(context.Background(), ref, preferFP16)
	if err != nil {
		return "", err
	}
	if ref.File != "" {
		return filepath.Join(files.Dir, filepath.FromSlash(ref.File)), nil
	}
	return files.Dir, nil
}

func aliasNames() string {
	var n []string
	for _, a := range hub.Aliases {
		n = append(n, a.Name)
	}
	return strings.Join(n, ", ")
}

func setupDownload(fs *pflag.FlagSet) func() error {
	fp16 := fs.Bool("fp16", false, "fetch the fp16 weight files when the repository has them")
	offline := fs.Bool("offline", false, "only check the cache (as HF_HUB_OFFLINE=1)")
	return func() error {
		if fs.NArg() != 1 {
			return fmt.Errorf("download: name one model: org/name[@revision], hf://org/name/file.safetensors, or one of %s", aliasNames())
		}
		ref, ok, err := hub.ParseRef(fs.Arg(0))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("download: %q is not a Hub name", fs.Arg(0))
		}
		c := hubClient(*offline)
		c.Verify = true // download checks every blob, cached ones included
		files, err := c.Resolve(context.Background(), ref, *fp16)
		if err != nil {
			return err
		}
		fmt.Println(files.Dir)
		for _, p := range files.Paths {
			fmt.Println("  " + p)
		}
		return nil
	}
}
