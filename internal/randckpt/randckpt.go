// Package randckpt writes checkpoints with the exact tensor names, dtypes and
// shapes of released Stable Diffusion files (manifests/, embedded: SD 1.5 and
// 2.1 copied from ../shared/data/checkpoint-manifests, the SDXL refiner 1.0
// derived from its released configs by testdata/gen/make_refiner_manifest.py)
// and random or zero contents: full-size models without downloading any weights, for loading
// tests and benchmarks (rfnet-native bench-engine builds one on the spot).
package randckpt

import (
	"bytes"
	"embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"github.com/nlpodyssey/safetensors"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
)

// Tensor is one manifest entry.
type Tensor struct {
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
}

// Manifest maps tensor names to their dtype and shape.
type Manifest map[string]Tensor

// The manifests of SD 1.5, SD 2.1 and the SDXL refiner (sdxl-refiner):
// <model>-single-file.json (one file's tensors) and <model>-diffusers.json
// (component file → tensors); SAM's (sam-vit-base) as <model>-shapes.json.
//
//go:embed manifests/*.json
var manifests embed.FS

// ReadSingleFile reads manifests/<name>.json (one file's tensors).
func ReadSingleFile(name string) (Manifest, error) {
	var m Manifest
	return m, readJSON("manifests/"+name+".json", &m)
}

// ReadShapes reads manifests/<name>-shapes.json (tensor name → shape, every
// tensor of dtype): sam-vit-base, a copy of testdata/sam/sam-vit-base-manifest.json
// (make_sam.py's facebook/sam-vit-base names and shapes).
func ReadShapes(name, dtype string) (Manifest, error) {
	var shapes map[string][]int
	if err := readJSON("manifests/"+name+"-shapes.json", &shapes); err != nil {
		return nil, err
	}
	m := make(Manifest, len(shapes))
	for n, s := range shapes {
		m[n] = Tensor{DType: dtype, Shape: s}
	}
	return m, nil
}

// ReadDiffusers reads manifests/<name>.json (component file → tensors).
func ReadDiffusers(name string) (map[string]Manifest, error) {
	var m map[string]Manifest
	return m, readJSON("manifests/"+name+".json", &m)
}

func readJSON(path string, v any) error {
	raw, err := manifests.ReadFile(path)
	if err != nil {
		return fmt.Errorf("randckpt: no manifest %s", path)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// lazyView is a safetensors view whose bytes are made when the writer asks.
type lazyView struct {
	dtype safetensors.DType
	shape []uint64
	n     uint64
	fill  func([]byte)
}

func (v lazyView) DType() safetensors.DType { return v.dtype }
func (v lazyView) Shape() []uint64          { return v.shape }
func (v lazyView) DataLen() uint64          { return v.n }
func (v lazyView) Data() []byte {
	b := make([]byte, v.n)
	v.fill(b)
	return b
}

// Write writes the manifest's tensors to path with random contents: F16 values
// of magnitude 2⁻⁹..2⁻⁵ with random signs (norm scales near 1), and I64
// position ids 0, 1, 2, ... Any other dtype is an error.
func Write(path string, m Manifest, seed uint64) error {
	views, err := randomViews(m, seed)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error { return serialize(views, w) })
}

// Bytes is Write into memory: the whole file as one slice (about 2 GB for
// SD 1.5), for benchmarks that need full-size weights and no disk.
func Bytes(m Manifest, seed uint64) ([]byte, error) {
	views, err := randomViews(m, seed)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	size := 0
	for _, v := range views {
		size += int(v.n)
	}
	buf.Grow(size + 1<<20)
	if err := serialize(views, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func serialize(views map[string]lazyView, w io.Writer) error {
	return safetensors.SerializeToWriter(views, map[string]string{"format": "pt", "note": "random weights"}, w)
}

// randomViews makes the lazily filled tensors of Write.
func randomViews(m Manifest, seed uint64) (map[string]lazyView, error) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	views := make(map[string]lazyView, len(m))
	for i, name := range names {
		t := m[name]
		dt, err := safetensors.ParseDType(t.DType)
		if err != nil || (dt != safetensors.F16 && dt != safetensors.I64) {
			return nil, fmt.Errorf("randckpt: %s: dtype %s (want F16 or I64)", name, t.DType)
		}
		shape := make([]uint64, len(t.Shape))
		n := uint64(1)
		for j, d := range t.Shape {
			shape[j] = uint64(d)
			n *= uint64(d)
		}
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		norm := len(t.Shape) == 1 && (filepath.Ext(name) == ".weight")
		fill := func(b []byte) {
			if dt == safetensors.I64 {
				for k := 0; k < len(b)/8; k++ {
					binary.LittleEndian.PutUint64(b[8*k:], uint64(k%77))
				}
				return
			}
			for k := 0; k < len(b)/2; k++ {
				bits := r.Uint32()
				// sign, exponent 6..10 (2⁻⁹..2⁻⁵), 10 random mantissa bits; norm scales near 1.
				h := uint16(bits&0x8000) | uint16(6+bits>>16%5)<<10 | uint16(bits>>20)&0x3ff
				if norm {
					h = 0x3c00 | uint16(bits>>20)&0xff // 1.0 .. 1.25
				}
				binary.LittleEndian.PutUint16(b[2*k:], h)
			}
		}
		views[name] = lazyView{dtype: dt, shape: shape, n: n * dt.Size(), fill: fill}
	}
	return views, nil
}

// WriteSparse writes the manifest's header and a hole of the right size where
// the data goes: a valid file that takes no disk space, for checks of names
// and shapes that never read the weights.
func WriteSparse(path string, m Manifest) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	off := uint64(0)
	for _, name := range names {
		t := m[name]
		dt, err := safetensors.ParseDType(t.DType)
		if err != nil {
			return fmt.Errorf("randckpt: %s: %w", name, err)
		}
		n := dt.Size()
		for _, d := range t.Shape {
			n *= uint64(d)
		}
		header[name] = map[string]any{"dtype": t.DType, "shape": t.Shape, "data_offsets": []uint64{off, off + n}}
		off += n
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := binary.Write(f, binary.LittleEndian, uint64(len(h))); err != nil {
		return err
	}
	if _, err := f.Write(h); err != nil {
		return err
	}
	return f.Truncate(int64(8 + len(h) + int(off)))
}
