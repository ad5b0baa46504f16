package pipeline

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/tensor"
)

// ToRGBA converts one image [1, 3, H, W] in [0, 1] to 8-bit RGBA, clamping and
// rounding as diffusers' numpy_to_pil does ((x·255).round()).
func ToRGBA(img *tensor.Tensor) *image.RGBA {
	h, w := img.Dim(2), img.Dim(3)
	v := img.Float32s()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	plane := h * w
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var c [3]uint8
			for ch := 0; ch < 3; ch++ {
				f := math.Min(1, math.Max(0, float64(v[ch*plane+y*w+x])))
				c[ch] = uint8(math.RoundToEven(f * 255))
			}
			out.SetRGBA(x, y, color.RGBA{c[0], c[1], c[2], 255})
		}
	}
	return out
}

// FromImage converts an image to [1, 3, H, W] in [0, 1] on backend b.
func FromImage(b tensor.Backend, d tensor.DType, im image.Image) *tensor.Tensor {
	r := im.Bounds()
	h, w := r.Dy(), r.Dx()
	v := make([]float32, 3*h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			cr, cg, cb, _ := im.At(r.Min.X+x, r.Min.Y+y).RGBA()
			for ch, c := range []uint32{cr, cg, cb} {
				v[ch*h*w+y*w+x] = float32(c>>8) / 255
			}
		}
	}
	return tensor.FromFloat32(b, d, tensor.Shape{1, 3, h, w}, v)
}

// WritePNG writes im to path atomically, with text chunks (key → value) after
// the header.
func WritePNG(path string, im image.Image, text map[string]string) error {
	p, err := PreparePNG(path, im, text)
	if err != nil {
		return err
	}
	return p.Commit()
}

// PreparePNG is WritePNG up to the rename: the PNG is written and synced under
// a temporary name, for the caller to commit with the other files of its result.
// Go's image/png writes no text chunks, so they are spliced into its output:
// each is length, "tEXt", key NUL value, CRC-32.
func PreparePNG(path string, im image.Image, text map[string]string) (*atomicfile.Pending, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, im); err != nil {
		return nil, fmt.Errorf("pipeline: encode %s: %w", path, err)
	}
	data := buf.Bytes()
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, IHDR length, type, data, CRC
	var chunks bytes.Buffer
	keys := make([]string, 0, len(text))
	for k := range text {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		writeTextChunk(&chunks, k, text[k])
	}
	return atomicfile.Prepare(path, func(w io.Writer) error {
		for _, part := range [][]byte{data[:ihdrEnd], chunks.Bytes(), data[ihdrEnd:]} {
			if _, err := w.Write(part); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeTextChunk writes an iTXt chunk when the value is not Latin-1 (tEXt
// holds Latin-1 only), a tEXt chunk otherwise.
func writeTextChunk(w *bytes.Buffer, key, value string) {
	typ, body := "tEXt", append([]byte(key+"\x00"), latin1(value)...)
	if !isLatin1(value) {
		// iTXt: key NUL, compression flag 0, method 0, empty language tag NUL, empty translated key NUL, UTF-8 text.
		typ, body = "iTXt", append([]byte(key+"\x00\x00\x00\x00\x00"), value...)
	}
	binary.Write(w, binary.BigEndian, uint32(len(body)))
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(body)
	w.WriteString(typ)
	w.Write(body)
	binary.Write(w, binary.BigEndian, crc.Sum32())
}

func isLatin1(s string) bool {
	for _, r := range s {
		if r > 0xff {
			return false
		}
	}
	return true
}

func latin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		out = append(out, byte(r))
	}
	return out
}

// pngSignature opens every PNG file.
const pngSignature = "\x89PNG\r\n\x1a\n"

// maxTextChunk bounds one text chunk, compressed or not: the parameters of an
// image are kilobytes, and a damaged length must not claim gigabytes.
const maxTextChunk = 64 << 20

// ReadPNGText returns the text chunks of the PNG file at path, key → text:
// tEXt (Latin-1), zTXt (compressed Latin-1) and iTXt (UTF-8, compressed or
// not), the chunks A1111 (through PIL), ComfyUI and PreparePNG write. When a
// key comes twice the first chunk wins. A file that is not a PNG, ends before
// its IEND chunk, or holds a text chunk that is damaged (its CRC or its
// compression) is an error naming path.
func ReadPNGText(path string) (map[string]string, error) {
	f, err := regular.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var sig [len(pngSignature)]byte
	if _, err := io.ReadFull(r, sig[:]); err != nil || string(sig[:]) != pngSignature {
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("pipeline: %s: %w", path, err)
		}
		return nil, fmt.Errorf("pipeline: %s is not a PNG file", path)
	}
	text := map[string]string{}
	for {
		var head [8]byte // length, type
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return nil, cutShort(path, "before its IEND chunk", err)
		}
		n, typ := binary.BigEndian.Uint32(head[:4]), string(head[4:])
		if n > 1<<31-1 {
			return nil, fmt.Errorf("pipeline: %s: a %q chunk claims %d bytes: the file is damaged", path, typ, n)
		}
		switch typ {
		case "tEXt", "zTXt", "iTXt":
			if n > maxTextChunk {
				return nil, fmt.Errorf("pipeline: %s: a %s chunk of %d bytes, more than the %d a text chunk may have: the file is damaged", path, typ, n, maxTextChunk)
			}
			body := make([]byte, n+4) // data, CRC
			if _, err := io.ReadFull(r, body); err != nil {
				return nil, cutShort(path, "inside a "+typ+" chunk", err)
			}
			data := body[:n]
			crc := crc32.NewIEEE()
			crc.Write(head[4:])
			crc.Write(data)
			if crc.Sum32() != binary.BigEndian.Uint32(body[n:]) {
				return nil, fmt.Errorf("pipeline: %s: a %s chunk's CRC does not match its data: the file is damaged", path, typ)
			}
			key, value, err := decodeTextChunk(typ, data)
			if err != nil {
				return nil, fmt.Errorf("pipeline: %s: %w", path, err)
			}
			if _, ok := text[key]; !ok {
				text[key] = value
			}
		default:
			if _, err := io.CopyN(io.Discard, r, int64(n)+4); err != nil {
				return nil, cutShort(path, "inside its "+typ+" chunk", err)
			}
			if typ == "IEND" {
				return text, nil
			}
		}
	}
}

// cutShort is the error for a file that ends where more was due; other read
// errors pass through.
func cutShort(path, where string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("pipeline: %s is cut short: it ends %s", path, where)
	}
	return fmt.Errorf("pipeline: %s: %w", path, err)
}

// decodeTextChunk splits a text chunk's data into key and text (as UTF-8).
// The layouts are the PNG specification's (section 11.3.4).
func decodeTextChunk(typ string, data []byte) (key, value string, err error) {
	k, rest, ok := bytes.Cut(data, []byte{0})
	if !ok {
		return "", "", fmt.Errorf("a %s chunk without the NUL after its key: the file is damaged", typ)
	}
	key = latin1ToUTF8(k)
	switch typ {
	case "tEXt":
		return key, latin1ToUTF8(rest), nil
	case "zTXt": // compression method, zlib data
		if len(rest) < 1 || rest[0] != 0 {
			return "", "", fmt.Errorf("the %s chunk %q: an unknown compression method", typ, key)
		}
		text, err := inflate(rest[1:])
		if err != nil {
			return "", "", fmt.Errorf("the %s chunk %q: %w", typ, key, err)
		}
		return key, latin1ToUTF8(text), nil
	}
	// iTXt: compression flag, compression method, language tag NUL, translated key NUL, text.
	if len(rest) < 2 {
		return "", "", fmt.Errorf("the %s chunk %q is cut short: the file is damaged", typ, key)
	}
	compressed, method := rest[0] == 1, rest[1]
	parts := bytes.SplitN(rest[2:], []byte{0}, 3)
	if len(parts) != 3 {
		return "", "", fmt.Errorf("the %s chunk %q lacks its language tag or translated key: the file is damaged", typ, key)
	}
	text := parts[2]
	if compressed {
		if method != 0 {
			return "", "", fmt.Errorf("the %s chunk %q: an unknown compression method", typ, key)
		}
		if text, err = inflate(text); err != nil {
			return "", "", fmt.Errorf("the %s chunk %q: %w", typ, key, err)
		}
	}
	return key, string(text), nil
}

// inflate decompresses zlib data of at most maxTextChunk bytes.
func inflate(data []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("damaged compressed text: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, maxTextChunk+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("damaged compressed text: %w", err)
	case len(out) > maxTextChunk:
		return nil, fmt.Errorf("more than %d bytes of text once decompressed", maxTextChunk)
	}
	return out, nil
}

func latin1ToUTF8(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// SidecarPath is the JSON file written next to an image: out.png → out.json.
func SidecarPath(imagePath string) string {
	return strings.TrimSuffix(imagePath, filepath.Ext(imagePath)) + ".json"
}

// WriteJSON writes v as indented JSON, atomically.
func WriteJSON(path string, v any) error {
	p, err := PrepareJSON(path, v)
	if err != nil {
		return err
	}
	return p.Commit()
}

// PrepareJSON is WriteJSON up to the rename (see PreparePNG).
func PrepareJSON(path string, v any) (*atomicfile.Pending, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", path, err)
	}
	return atomicfile.PrepareBytes(path, append(data, '\n'))
}
