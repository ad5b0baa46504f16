package weights

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rfnet/rfnet-native/tensor"
)

// Ref says where a canonical tensor lives: a stored tensor, or a block of its
// leading axis (OpenCLIP stacks q, k and v in one in_proj), served with Shape
// (the same elements, possibly reshaped: VAE attention projections are 1×1
// convolutions in single files and linear layers in diffusers folders), or
// the transpose of a stored matrix.
type Ref struct {
	File   *File
	Stored string
	// Rows, when End > 0, selects rows [Start, End) of the stored tensor's first axis.
	Start, End int
	Shape      tensor.Shape
	// Transposed serves the stored [R, C] matrix as its [C, R] transpose.
	Transposed bool
}

// Mapping serves one model's weights under canonical (diffusers) names.
type Mapping struct {
	refs map[string]Ref
	// unmapped are stored names that no rule claimed and that are not known extras.
	unmapped []string
}

// NewMapping returns an empty mapping.
func NewMapping() *Mapping { return &Mapping{refs: map[string]Ref{}} }

// Add serves stored tensor `stored` of f as canonical.
func (m *Mapping) Add(canonical string, f *File, stored string) {
	info := f.infos[stored]
	m.refs[canonical] = Ref{File: f, Stored: stored, Shape: info.Shape}
}

// AddReshaped serves stored as canonical with a new shape of the same size.
func (m *Mapping) AddReshaped(canonical string, f *File, stored string, shape tensor.Shape) {
	m.refs[canonical] = Ref{File: f, Stored: stored, Shape: shape}
}

// AddRows serves rows [start, end) of stored's first axis as canonical.
func (m *Mapping) AddRows(canonical string, f *File, stored string, start, end int) {
	shape := f.infos[stored].Shape.Clone()
	shape[0] = end - start
	m.refs[canonical] = Ref{File: f, Stored: stored, Start: start, End: end, Shape: shape}
}

// AddTransposed serves the transpose of the stored matrix as canonical:
// OpenCLIP's text_projection P is used as x·P, so a linear layer's weight is
// Pᵀ. A stored tensor that is not a matrix is served as it is, and its shape
// then fails the model's check.
func (m *Mapping) AddTransposed(canonical string, f *File, stored string) {
	shape := f.infos[stored].Shape
	if len(shape) != 2 {
		m.Add(canonical, f, stored)
		return
	}
	m.refs[canonical] = Ref{File: f, Stored: stored, Shape: tensor.Shape{shape[1], shape[0]}, Transposed: true}
}

// Unmapped records a stored name that the model's rules do not use.
func (m *Mapping) Unmapped(stored string) { m.unmapped = append(m.unmapped, stored) }

// Lookup returns the reference of a canonical name.
func (m *Mapping) Lookup(canonical string) (Ref, bool) {
	r, ok := m.refs[canonical]
	return r, ok
}

// Canonical lists the canonical names, sorted.
func (m *Mapping) Canonical() []string {
	names := make([]string, 0, len(m.refs))
	for n := range m.refs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// MapFile serves every tensor of f whose name starts with prefix under the rest
// of its name, after rename (which may be nil, and returns "" for names to skip
// silently, such as known unused extras).
func MapFile(f *File, prefix string, rename func(name string) string) *Mapping {
	m := NewMapping()
	for _, stored := range f.Names() {
		if !strings.HasPrefix(stored, prefix) {
			continue
		}
		name := strings.TrimPrefix(stored, prefix)
		if rename != nil {
			if name = rename(name); name == "" {
				continue
			}
		}
		m.Add(name, f, stored)
	}
	return m
}

// load reads a reference into backend b as dtype d.
func (r Ref) load(b tensor.Backend, d tensor.DType) (*tensor.Tensor, error) {
	raw, info, err := r.File.Raw(r.Stored)
	if err != nil {
		return nil, err
	}
	src, ok := floatDType(info.DType)
	if !ok {
		return nil, fmt.Errorf("weights: %s: tensor %q is %s: %w", r.File.path, r.Stored, info.DType, ErrNotFloat)
	}
	if r.End > 0 {
		rowBytes := len(raw) / info.Shape[0]
		raw = raw[r.Start*rowBytes : r.End*rowBytes]
	}
	if r.Transposed {
		raw = transpose(raw, info.Shape[0], info.Shape[1])
	}
	return tensor.Wrap(b, b.FromRaw(d, src, raw), r.Shape), nil
}

// transpose returns the bytes of the [rows, cols] matrix raw, of elements of
// any one size, as its [cols, rows] transpose.
func transpose(raw []byte, rows, cols int) []byte {
	if rows*cols == 0 {
		return raw
	}
	size := len(raw) / (rows * cols)
	out := make([]byte, len(raw))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			copy(out[(j*rows+i)*size:(j*rows+i+1)*size], raw[(i*cols+j)*size:(i*cols+j+1)*size])
		}
	}
	return out
}
