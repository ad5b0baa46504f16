package rfbench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Check decides whether an item is finished and intact; bench, eval and
// report all ask it. sidecar is the item's metadata file, relative to the run
// folder, with slashes. The item is finished when the sidecar decodes, names
// the image beside it and records that image's size and SHA-256, and the
// image on disk still has both. The sidecar is written last, so a run killed
// in between leaves an item that is not finished; a truncated, emptied or
// altered image, a broken sidecar, or one from before the size and hash were
// recorded, fails too. A missing sidecar (an item never finished) is an error
// that wraps fs.ErrNotExist; every other error starts with the file's path.
func Check(run, sidecar string) (Meta, error) {
	var m Meta
	raw, err := os.ReadFile(filepath.Join(run, filepath.FromSlash(sidecar)))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("%s: %w", sidecar, err)
	}
	image := strings.TrimSuffix(sidecar, ".json") + ".png"
	switch {
	case m.Image != image:
		return m, fmt.Errorf("%s: names the image %q, want %q", sidecar, m.Image, image)
	case m.ImageBytes <= 0 || m.ImageSHA256 == "":
		return m, fmt.Errorf("%s: records no image size and hash (written by an older version)", sidecar)
	}
	size, sum, err := hashFile(filepath.Join(run, filepath.FromSlash(image)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Not wrapped: the item was finished once, so it is broken, not new.
		return m, fmt.Errorf("%s: missing, sidecar says %d bytes", image, m.ImageBytes)
	case err != nil:
		return m, fmt.Errorf("%s: %v", image, err)
	case size != m.ImageBytes:
		return m, fmt.Errorf("%s: size %d, sidecar says %d", image, size, m.ImageBytes)
	case sum != m.ImageSHA256:
		return m, fmt.Errorf("%s: SHA-256 %.12s…, sidecar says %.12s…", image, sum, m.ImageSHA256)
	}
	return m, nil
}

// hashFile is a file's size and hex SHA-256.
func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}
