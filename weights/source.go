package weights

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rfnet/rfnet-native/tensor"
)

// Source hands a model's constructors its weights by canonical name. It keeps
// the first problems instead of returning an error per tensor, so constructors
// read like the architecture; Err reports every missing, misshaped and unused
// tensor at once after the model is built.
type Source struct {
	l      *loader
	prefix string
}

type loader struct {
	model   string
	m       *Mapping
	b       tensor.Backend
	d       tensor.DType
	used    map[string]bool
	missing []string
	shapes  []string
	other   []string
}

// NewSource serves m's tensors for the named model (used in messages: "unet",
// "vae", "text encoder") into backend b as dtype d.
func NewSource(model string, m *Mapping, b tensor.Backend, d tensor.DType) *Source {
	return &Source{l: &loader{model: model, m: m, b: b, d: d, used: map[string]bool{}}}
}

// Sub returns the source for a child module: Sub("down_blocks", 1, "resnets", 0).
func (s *Source) Sub(parts ...any) *Source {
	p := s.prefix
	for _, part := range parts {
		p += fmt.Sprint(part) + "."
	}
	return &Source{l: s.l, prefix: p}
}

// Tensor loads a tensor that must have the given shape. When it is missing or
// misshaped, the problem is recorded and a zero tensor of the wanted shape
// stands in, so construction can go on and report everything together.
func (s *Source) Tensor(name string, shape ...int) *tensor.Tensor {
	full := s.prefix + name
	want := tensor.Shape(shape)
	ref, ok := s.l.m.Lookup(full)
	switch {
	case !ok:
		s.l.missing = append(s.l.missing, fmt.Sprintf("%s %v", full, want))
	case !ref.Shape.Equal(want):
		s.l.used[full] = true
		s.l.shapes = append(s.l.shapes, fmt.Sprintf("%s: shape %v, want %v", full, ref.Shape, want))
	default:
		s.l.used[full] = true
		t, err := ref.load(s.l.b, s.l.d)
		if err == nil {
			return t
		}
		s.l.other = append(s.l.other, err.Error())
	}
	return tensor.Zeros(s.l.b, s.l.d, shape...)
}

// Err reports, in one error, the tensors that were missing, misshaped or
// unreadable, and the stored tensors the model did not use; nil when the
// weights fit the model exactly.
func (s *Source) Err() error {
	l := s.l
	var unused []string
	for _, n := range l.m.Canonical() {
		if !l.used[n] {
			unused = append(unused, n)
		}
	}
	unused = append(unused, l.m.unmapped...)
	sort.Strings(unused)
	var parts []string
	add := func(what string, list []string) {
		if len(list) == 0 {
			return
		}
		const show = 5
		more := ""
		if len(list) > show {
			more = fmt.Sprintf(", and %d more", len(list)-show)
			list = list[:show]
		}
		parts = append(parts, fmt.Sprintf("%s: %s%s", what, strings.Join(list, "; "), more))
	}
	add(fmt.Sprintf("%d missing", len(l.missing)), l.missing)
	add(fmt.Sprintf("%d misshaped", len(l.shapes)), l.shapes)
	add(fmt.Sprintf("%d unreadable", len(l.other)), l.other)
	add(fmt.Sprintf("%d unused", len(unused)), unused)
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s: the weights do not fit the model (%s)", l.model, strings.Join(parts, " | "))
}
