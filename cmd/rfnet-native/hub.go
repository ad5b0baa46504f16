package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/hub"
)

// hubClient is the Hub client of the environment (HF_HOME, HF_TOKEN,
// HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT),
// with a progress bar per downloaded file.
func hubClient(offline bool) (*hub.Client, error) {
	c, err := hub.FromEnv()
	if err != nil {
		return nil, err
	}
	c.Offline = c.Offline || offline
	c.Log = os.Stderr
	c.Progress = func(name string, size int64) io.Writer {
		return progressbar.DefaultBytes(size, "downloading "+name)
	}
	return c, nil
}

// resolveWeights turns --weights into a local path: an existing file or
// folder as it is; a Hub name (org/name[@revision], hf://..., or an alias)
// through the Hugging Face cache, downloading what is missing.
func resolveWeights(ctx context.Context, name string, offline, preferFP16 bool) (string, error) {
	return resolveModel(ctx, "--weights", name, offline, preferFP16)
}

// resolveModel is resolveWeights for the model flag names (--sdxl-weights).
func resolveModel(ctx context.Context, flag, name string, offline, preferFP16 bool) (string, error) {
	_, err := os.Stat(name)
	if err == nil {
		return name, nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) { // ENOTDIR: a file "org" beside "org/name"
		// A symlink loop, a permission or a file used as a folder: the path is
		// there but cannot be read, and it is no Hub name either.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("%s %s: %w", flag, name, err)
	}
	if target, lerr := os.Readlink(name); lerr == nil {
		return "", fmt.Errorf("%s %s is a symbolic link to %s, which does not exist", flag, name, target)
	}
	ref, ok, err := hub.ParseRef(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%s %s: no such file or folder, and not a Hub name (org/name[@revision], hf://org/name/file.safetensors, or one of %s)", flag, name, aliasNames())
	}
	c, err := hubClient(offline)
	if err != nil {
		return "", err
	}
	files, err := c.Resolve(ctx, ref, preferFP16)
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
	tokenizerOnly := fs.Bool("tokenizer-only", false, "fetch only the repository's CLIP tokenizer files (what a bare single-file checkpoint needs offline)")
	// The defaults shown are the environment's; a malformed variable is
	// reported when the command runs.
	etagDefault, downloadDefault := hub.DefaultEtagTimeout, hub.DefaultDownloadTimeout
	if c, err := hub.FromEnv(); err == nil {
		etagDefault, downloadDefault = c.EtagTimeout, c.DownloadTimeout
	}
	etagTimeout := fs.Duration("etag-timeout", etagDefault, "how long a metadata request (repository listing, file HEAD) may go without receiving anything, connecting included; $HF_HUB_ETAG_TIMEOUT (seconds) when set")
	downloadTimeout := fs.Duration("download-timeout", downloadDefault, "how long a file download may go without receiving a byte, connecting included; $HF_HUB_DOWNLOAD_TIMEOUT (seconds) when set")
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
		if *etagTimeout <= 0 || *downloadTimeout <= 0 {
			return fmt.Errorf("download: --etag-timeout %s, --download-timeout %s: want positive durations (such as 10s or 1m)", *etagTimeout, *downloadTimeout)
		}
		c, err := hubClient(*offline)
		if err != nil {
			return err
		}
		c.EtagTimeout, c.DownloadTimeout = *etagTimeout, *downloadTimeout
		c.Verify = true // download checks every blob, cached ones included
		if *tokenizerOnly {
			dir := tokenizerDir(ref.Repo)
			folder, err := c.FetchFolder(context.Background(), ref.Repo, ref.Revision, dir, tokenizerFiles, tokenizerOptionalFiles)
			if err != nil {
				return err
			}
			fmt.Println(folder)
			return nil
		}
		if ref.Repo == samRepo && ref.File == "" { // a transformers folder, not a diffusers one: its two files
			folder, err := c.FetchFolder(context.Background(), ref.Repo, ref.Revision, "", samFiles, nil)
			if err != nil {
				return err
			}
			fmt.Println(folder)
			return nil
		}
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
