package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/edsrzf/mmap-go"
	"github.com/nlpodyssey/safetensors"

	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/tensor"
)

// maxHeader is the header size limit of the safetensors format (100 MB).
const maxHeader = 100_000_000

// ErrNotFloat is returned when a float read is asked of an integer tensor.
var ErrNotFloat = errors.New("not a float tensor")

// ErrPickle is wrapped when a file is a pickle (a PyTorch .ckpt, .pt or .bin),
// which is never loaded, for the reason it says.
var ErrPickle = errors.New("unpickling runs code from the file")

// Info describes one tensor of a file.
type Info struct {
	Name  string
	DType string // the safetensors dtype code: F32, F16, BF16, F64, I64, ...
	Shape tensor.Shape
	// Bytes is the size of the tensor's data.
	Bytes int64
}

// File is an opened .safetensors file.
type File struct {
	path  string
	mm    mmap.MMap // nil when the file is empty
	st    safetensors.SafeTensors
	infos map[string]Info
	names []string
	meta  map[string]string
}

// Open memory-maps path and checks its header.
func Open(path string) (*File, error) {
	// Opening a FIFO for reading blocks until someone writes to it.
	if err := regular.Check(path); err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("weights: %s is a folder, not a .safetensors file", path)
	}
	var data []byte
	var mm mmap.MMap
	if fi.Size() > 0 {
		if mm, err = mmap.Map(f, mmap.RDONLY, 0); err != nil {
			return nil, fmt.Errorf("weights: %s: memory-map: %w", path, err)
		}
		data = mm
	}
	file, err := parse(path, data)
	if err != nil {
		if mm != nil {
			mm.Unmap()
		}
		return nil, err
	}
	file.mm = mm
	return file, nil
}

// FromBytes reads a .safetensors file held in memory (name is for messages):
// random weights built on the spot (bench-engine), or a file already read.
func FromBytes(name string, data []byte) (*File, error) { return parse(name, data) }

// parse checks data, the bytes of a whole .safetensors file, and indexes its tensors.
func parse(path string, data []byte) (*File, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("weights: %s: "+format, append([]any{path}, args...)...)
	}
	if len(data) < 8 {
		return nil, fail("file is %d bytes, too short for a safetensors header (not a safetensors file?)", len(data))
	}
	if kind := pickleKind(data); kind != "" && (len(data) < 9 || data[8] != '{') {
		return nil, fail("%s, which rfnet-native refuses to load (%w): convert it to .safetensors first: diffusers' scripts/convert_original_stable_diffusion_to_diffusers.py --checkpoint_path FILE --dump_path DIR --to_safetensors writes a diffusers folder to load instead", kind, ErrPickle)
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxHeader {
		return nil, fail("header length %d exceeds the format's limit of %d bytes (not a safetensors file?)", n, maxHeader)
	}
	if n > uint64(len(data)-8) {
		return nil, fail("truncated: the header is %d bytes but only %d follow the length field", n, len(data)-8)
	}
	header := data[8 : 8+n]
	if t := bytes.TrimLeft(header, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fail("header is not a JSON object (not a safetensors file?)")
	}
	payload := int64(len(data)) - 8 - int64(n)
	if err := diagnose(header, payload); err != nil {
		return nil, fail("%v", err)
	}
	st, err := safetensors.Deserialize(data)
	if err != nil {
		return nil, fail("malformed header: %v", err)
	}
	names := st.Names()
	sort.Strings(names)
	file := &File{path: path, st: st, names: names, infos: make(map[string]Info, len(names))}
	for _, name := range names {
		v, _ := st.Tensor(name)
		shape := make(tensor.Shape, len(v.Shape()))
		for i, d := range v.Shape() {
			if d > 1<<40 {
				return nil, fail("tensor %q: axis %d has size %d", name, i, d)
			}
			shape[i] = int(d)
		}
		file.infos[name] = Info{Name: name, DType: v.DType().String(), Shape: shape, Bytes: int64(v.DataLen())}
	}
	var hdr struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if json.Unmarshal(header, &hdr) == nil {
		file.meta = hdr.Meta
	}
	return file, nil
}

// pickleKind recognizes PyTorch's checkpoint formats by their first bytes:
// torch.save's zip archive (.ckpt, .pt, .bin since PyTorch 1.6) and a bare
// pickle (protocol 2 to 5: 0x80 and the protocol number), which safetensors
// would otherwise read as an absurd header length. Those bytes can also begin
// a real safetensors file (a header of 640 bytes is 0x80 0x02 ...): the
// caller asks only when no JSON header follows the length.
func pickleKind(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		return "a PyTorch checkpoint (torch.save's zip of pickles: .ckpt, .pt or .bin)"
	case len(data) >= 2 && data[0] == 0x80 && data[1] >= 2 && data[1] <= 5:
		return "a Python pickle (a legacy PyTorch .ckpt, .pt or .bin)"
	}
	return ""
}

// rawInfo is one header entry as written in the file.
type rawInfo struct {
	DType       string   `json:"dtype"`
	Shape       []uint64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// checkNumbers reports offsets and shape entries that are not whole numbers
// from 0 to 2^63-1: the library rejects them without naming the tensor, and
// once skipped they surfaced as "bytes of data after the last tensor".
func checkNumbers(name string, msg json.RawMessage) error {
	var raw struct {
		Shape       []json.Number `json:"shape"`
		DataOffsets []json.Number `json:"data_offsets"`
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.UseNumber()
	if dec.Decode(&raw) != nil {
		return nil // not numbers at all: the library's message says so
	}
	for _, f := range []struct {
		field string
		v     []json.Number
	}{{"data_offsets", raw.DataOffsets}, {"shape", raw.Shape}} {
		for i, n := range f.v {
			if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil || strings.HasPrefix(n.String(), "-") {
				return fmt.Errorf("tensor %q: %s[%d] is %s: want a whole number from 0 to 2^63-1 (a corrupt header)", name, f.field, i, n)
			}
		}
	}
	return nil
}

// diagnose finds the problems the library reports without naming a tensor or a
// cause: byte counts that disagree with dtype and shape, ranges that run past the
// end of the data (a truncated file), overlap, or leave gaps. It returns nil when
// it cannot decode the header; the library then reports the problem.
func diagnose(header []byte, payload int64) error {
	var raw map[string]json.RawMessage
	if json.Unmarshal(header, &raw) != nil {
		return nil
	}
	type span struct {
		name       string
		start, end uint64
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		if err := checkNumbers(name, msg); err != nil {
			return err
		}
		var ri rawInfo
		if json.Unmarshal(msg, &ri) != nil || len(ri.DataOffsets) != 2 {
			continue
		}
		start, end := ri.DataOffsets[0], ri.DataOffsets[1]
		if end < start {
			return fmt.Errorf("tensor %q: data offsets [%d, %d) are reversed", name, start, end)
		}
		if end > uint64(payload) {
			return fmt.Errorf("truncated or corrupt: tensor %q occupies bytes [%d, %d) of the data but the file holds only %d bytes of data", name, start, end, payload)
		}
		if dt, err := safetensors.ParseDType(ri.DType); err == nil {
			need, ok := dt.Size(), true
			for _, d := range ri.Shape {
				if d != 0 && need > ^uint64(0)/d {
					ok = false
					break
				}
				need *= d
			}
			if !ok || need != end-start {
				return fmt.Errorf("tensor %q: %s %v needs %d bytes but its data offsets span %d", name, ri.DType, ri.Shape, need, end-start)
			}
		}
		spans = append(spans, span{name, start, end})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].start != spans[j].start {
			return spans[i].start < spans[j].start
		}
		return spans[i].end < spans[j].end
	})
	pos := uint64(0)
	for i, s := range spans {
		if s.start < pos && s.end > s.start {
			p := spans[i-1]
			return fmt.Errorf("tensors %q [%d, %d) and %q [%d, %d) overlap", p.name, p.start, p.end, s.name, s.start, s.end)
		}
		if s.start > pos {
			return fmt.Errorf("gap in the data before tensor %q (bytes [%d, %d) belong to no tensor)", s.name, pos, s.start)
		}
		pos = max(pos, s.end)
	}
	if pos != uint64(payload) {
		return fmt.Errorf("%d bytes of data after the last tensor belong to no tensor", uint64(payload)-pos)
	}
	return nil
}

// Close unmaps the file. Tensors already loaded stay valid; raw views do not.
func (f *File) Close() error {
	if f.mm == nil {
		return nil
	}
	err := f.mm.Unmap()
	f.mm = nil
	return err
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Names lists the tensors, sorted.
func (f *File) Names() []string { return append([]string(nil), f.names...) }

// Metadata is the header's __metadata__ map (nil when absent).
func (f *File) Metadata() map[string]string { return f.meta }

// Info describes one tensor.
func (f *File) Info(name string) (Info, bool) {
	i, ok := f.infos[name]
	return i, ok
}

// Raw returns a tensor's bytes without copying them; they are valid until Close.
func (f *File) Raw(name string) ([]byte, Info, error) {
	info, ok := f.infos[name]
	if !ok {
		return nil, Info{}, fmt.Errorf("weights: %s: no tensor %q", f.path, name)
	}
	v, _ := f.st.Tensor(name)
	return v.Data(), info, nil
}

// floatDType maps a safetensors dtype code to the engine's storage dtype.
func floatDType(code string) (tensor.DType, bool) {
	switch code {
	case "F32":
		return tensor.Float32, true
	case "F16":
		return tensor.Float16, true
	case "BF16":
		return tensor.BFloat16, true
	case "F64":
		return tensor.Float64, true
	}
	return 0, false
}

// Load reads a float tensor into backend b as dtype d, converting from the
// stored dtype (F32, F16, BF16 or F64).
func (f *File) Load(b tensor.Backend, name string, d tensor.DType) (*tensor.Tensor, error) {
	raw, info, err := f.Raw(name)
	if err != nil {
		return nil, err
	}
	src, ok := floatDType(info.DType)
	if !ok {
		return nil, fmt.Errorf("weights: %s: tensor %q is %s: %w", f.path, name, info.DType, ErrNotFloat)
	}
	return tensor.Wrap(b, b.FromRaw(d, src, raw), info.Shape), nil
}
