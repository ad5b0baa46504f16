package rfbench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/regular"
)

// Check decides whether an item is finished and intact; bench, eval, report
// and merge all ask it. sidecar is the item's metadata file, relative to the
// run folder, with slashes. The item is finished when the sidecar decodes,
// describes the item its name says, names the image beside it and records
// that image's size and SHA-256, and the image on disk still has both. The
// sidecar is written last, so a run killed in between leaves an item that is
// not finished; a truncated, emptied or altered image, or a broken sidecar,
// fails too, and so does an item whose kept artifacts (see artifacts.go) are
// not all there at the sizes its sidecar lists. Neither file is read unless it is a regular file (see
// regular.Open), and the sidecar is at most MaxJSON bytes; the image is
// hashed as a stream, so its size does not matter.
//
// A sidecar of an earlier version, which records neither size nor hash,
// passes when its image decodes whole (image/png verifies every chunk's CRC
// and the zlib checksum of the pixels) at the sidecar's width and height:
// the size and hash of that image are then filled in and HashAdded is set.
//
// A missing sidecar (an item never finished) is an error that wraps
// fs.ErrNotExist; every error starts with the path of the file at fault.
func Check(run, sidecar string) (Meta, error) {
	c, err := check(run, sidecar)
	return c.meta, err
}

// checked is an item as check read it.
type checked struct {
	meta    Meta
	decoded bool   // the sidecar decoded into meta (whether or not the item passed)
	raw     []byte // the sidecar
	legacy  bool   // the sidecar is of an earlier version: meta has the size and hash it lacks
}

func check(run, sidecar string) (checked, error) {
	var c checked
	raw, err := regular.ReadFileAtMost(filepath.Join(run, filepath.FromSlash(sidecar)), MaxJSON)
	if err != nil {
		return c, fmt.Errorf("%s: %w", sidecar, err)
	}
	c.raw = raw
	m := &c.meta
	if err := json.Unmarshal(raw, m); err != nil {
		return c, fmt.Errorf("%s: %w", sidecar, err)
	}
	c.decoded = true
	image := strings.TrimSuffix(sidecar, ".json") + ".png"
	c.legacy = m.ImageBytes == 0 && m.ImageSHA256 == "" && !m.HashAdded
	switch {
	case sidecar != "images/"+metaKey(*m)+".json":
		// Its results would be filed under another item's name.
		return c, fmt.Errorf("%s: describes the item %s, not the one its name says", sidecar, metaKey(*m))
	case m.Image != image:
		return c, fmt.Errorf("%s: names the image %q, want %q", sidecar, m.Image, image)
	case c.legacy:
	case m.ImageBytes < 0:
		return c, fmt.Errorf("%s: records the image size %d, which is invalid", sidecar, m.ImageBytes)
	case m.ImageBytes == 0 || m.ImageSHA256 == "":
		return c, fmt.Errorf("%s: records image size %d and SHA-256 %q, want both", sidecar, m.ImageBytes, m.ImageSHA256)
	case !isSHA256(m.ImageSHA256):
		return c, fmt.Errorf("%s: records the SHA-256 %q, which is not 64 hex digits", sidecar, m.ImageSHA256)
	}
	f, err := regular.Open(filepath.Join(run, filepath.FromSlash(image)))
	var size int64
	if err == nil {
		var fi fs.FileInfo
		if fi, err = f.Stat(); err != nil {
			f.Close()
		} else {
			size = fi.Size()
		}
	}
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
	defer f.Close()
	if c.legacy {
		if err := decodesWhole(f, m.Width, m.Height); err != nil {
			return c, fmt.Errorf("%s: %v (its sidecar, of an earlier version, records no size and hash)", image, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return c, fmt.Errorf("%s: %v", image, err)
		}
	} else if size != m.ImageBytes {
		return c, fmt.Errorf("%s: size %d, sidecar says %d", image, size, m.ImageBytes)
	}
	n, hash, err := hashStream(f)
	if err != nil {
		return c, fmt.Errorf("%s: %v", image, err)
	}
	switch {
	case c.legacy:
		m.ImageBytes, m.ImageSHA256, m.HashAdded = n, hash, true
	case n != m.ImageBytes: // it changed since the stat
		return c, fmt.Errorf("%s: size %d, sidecar says %d", image, n, m.ImageBytes)
	case hash != m.ImageSHA256:
		return c, fmt.Errorf("%s: SHA-256 %.12s…, sidecar says %.12s…", image, hash, m.ImageSHA256)
	}
	return c, checkArtifacts(run, sidecar, *m)
}

func isSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// MaxDecodedPixels bounds the images that check (for a sidecar of an earlier
// version) and report decode: 8192², past anything a benchmark makes, takes
// at most 512 MiB decoded (16-bit RGBA). A PNG of a few bytes can claim any
// size in its header.
const MaxDecodedPixels = 8192 * 8192

// decodesWhole checks that r holds a PNG of width×height that decodes to its
// end: png.Decode reads every chunk up to IEND, verifying their CRCs, and
// reads the pixel data's zlib stream to its end, verifying its checksum. The
// header is read first, so an image of another size is not decoded.
func decodesWhole(r io.ReadSeeker, width, height int) error {
	cfg, err := png.DecodeConfig(r)
	switch {
	case err != nil:
		return fmt.Errorf("does not decode: %v", err)
	case cfg.Width != width || cfg.Height != height:
		return fmt.Errorf("%d×%d, sidecar says %d×%d", cfg.Width, cfg.Height, width, height)
	case int64(cfg.Width)*int64(cfg.Height) > MaxDecodedPixels:
		return fmt.Errorf("%d×%d, larger than any image of an earlier version", cfg.Width, cfg.Height)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := png.Decode(r); err != nil {
		return fmt.Errorf("does not decode: %v", err)
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
