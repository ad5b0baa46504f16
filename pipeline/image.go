package pipeline

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
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
