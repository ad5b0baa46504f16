package rfbench

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/regular"
)

// Check decides whether an item is finished and intact; bench, eval, report
// and merge all ask it. sidecar is the item's metadata file, relative to the
// run folder, with slashes. The item is finished when the sidecar decodes,
// names the image beside it and records that image's size and SHA-256, and
// the image on disk still has both. The sidecar is written last, so a run
// killed in between leaves an item that is not finished; a truncated,
// emptied or altered image, or a broken sidecar, fails too.
//
// A sidecar of an earlier version, which records neither size nor hash,
// passes when its image decodes whole (image/png verifies every chunk's CRC
// and the zlib checksum of the pixels) at the sidecar's width and height:
// the size and hash of that image are then filled in and HashAdded is set.
//
// A missing sidecar (an item never finished) is an error that wraps
// fs.ErrNotExist; every other error starts with the file's path.
func Check(run, sidecar string) (Meta, error) {
	c, err := check(run, sidecar)
	return c.meta, err
}

// checked is an item as check read it.
type checked struct {
	meta   Meta
	raw    []byte // the sidecar
	png    []byte // the image
	legacy bool   // the sidecar is of an earlier version: meta has the size and hash it lacks
}

func check(run, sidecar string) (checked, error) {
	var c checked
	raw, err := regular.ReadFile(filepath.Join(run, filepath.FromSlash(sidecar)))
	if err != nil {
		return c, err
	}
	c.raw = raw
	m := &c.meta
	if err := json.Unmarshal(raw, m); err != nil {
		return c, fmt.Errorf("%s: %w", sidecar, err)
	}
	image := strings.TrimSuffix(sidecar, ".json") + ".png"
	c.legacy = m.ImageBytes == 0 && m.ImageSHA256 == "" && !m.HashAdded
	switch {
	case m.Image != image:
		return c, fmt.Errorf("%s: names the image %q, want %q", sidecar, m.Image, image)
	case !c.legacy && (m.ImageBytes <= 0 || m.ImageSHA256 == ""):
		return c, fmt.Errorf("%s: records image size %d and SHA-256 %q, want both", sidecar, m.ImageBytes, m.ImageSHA256)
	}
	c.png, err = regular.ReadFile(filepath.Join(run, filepath.FromSlash(image)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Not wrapped: the item was finished once, so it is broken, not new.
			if c.legacy {
				return c, fmt.Errorf("%s: missing", image)
			}
			return c, fmt.Errorf("%s: missing, sidecar says %d bytes", image, m.ImageBytes)
		}
		return c, fmt.Errorf("%s: %v", image, err)
	}
	size, sum := int64(len(c.png)), sha256.Sum256(c.png)
	hash := hex.EncodeToString(sum[:])
	if c.legacy {
		if err := decodesWhole(c.png, m.Width, m.Height); err != nil {
			return c, fmt.Errorf("%s: %v (its sidecar, of an earlier version, records no size and hash)", image, err)
		}
		m.ImageBytes, m.ImageSHA256, m.HashAdded = size, hash, true
		return c, nil
	}
	switch {
	case size != m.ImageBytes:
		return c, fmt.Errorf("%s: size %d, sidecar says %d", image, size, m.ImageBytes)
	case hash != m.ImageSHA256:
		return c, fmt.Errorf("%s: SHA-256 %.12s…, sidecar says %.12s…", image, hash, m.ImageSHA256)
	}
	return c, nil
}

// decodesWhole checks that data is a PNG of width×height that decodes to its
// end: png.Decode reads every chunk up to IEND, verifying their CRCs, and
// reads the pixel data's zlib stream to its end, verifying its checksum.
func decodesWhole(data []byte, width, height int) error {
	im, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("does not decode: %v", err)
	}
	if b := im.Bounds(); b.Dx() != width || b.Dy() != height {
		return fmt.Errorf("%d×%d, sidecar says %d×%d", b.Dx(), b.Dy(), width, height)
	}
	return nil
}

// record writes the size and hash check computed into the sidecar of an
// earlier version, with hash_added set. The sidecar's other fields are kept
// as they were, those this version does not know included.
func (c checked) record(run, sidecar string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(c.raw, &fields); err != nil {
		return err
	}
	fields["image_bytes"], _ = json.Marshal(c.meta.ImageBytes)
	fields["image_sha256"], _ = json.Marshal(c.meta.ImageSHA256)
	fields["hash_added"] = json.RawMessage("true")
	data, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(run, filepath.FromSlash(sidecar)), append(data, '\n'))
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
