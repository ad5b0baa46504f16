package weights

import (
	"encoding/binary"
	"fmt"
)

// NonFinite is a NaN or infinite weight, found by FirstNonFinite.
type NonFinite struct {
	Canonical, Stored, File string
	Index                   int // the element within the stored tensor
}

func (n NonFinite) String() string {
	return fmt.Sprintf("%s (stored as %s in %s) element %d", n.Canonical, n.Stored, n.File, n.Index)
}

// FirstNonFinite looks through the mapping's tensors, in canonical order, for a
// NaN or infinite element, reading the stored bits without converting them.
// It is meant for the error path: a model whose output went non-finite is
// asked whether its weights already were.
func (m *Mapping) FirstNonFinite() (NonFinite, bool) {
	for _, name := range m.Canonical() {
		r := m.refs[name]
		raw, info, err := r.File.Raw(r.Stored)
		if err != nil {
			continue
		}
		if i := firstNonFiniteRaw(info.DType, raw); i >= 0 {
			return NonFinite{Canonical: name, Stored: r.Stored, File: r.File.Path(), Index: i}, true
		}
	}
	return NonFinite{}, false
}

// firstNonFiniteRaw is the index of the first element of raw (little-endian,
// safetensors dtype code) whose exponent bits are all ones, or -1.
func firstNonFiniteRaw(code string, raw []byte) int {
	le := binary.LittleEndian
	switch code {
	case "F32":
		for i := 0; i+4 <= len(raw); i += 4 {
			if le.Uint32(raw[i:])&0x7f800000 == 0x7f800000 {
				return i / 4
			}
		}
	case "F16":
		for i := 0; i+2 <= len(raw); i += 2 {
			if le.Uint16(raw[i:])&0x7c00 == 0x7c00 {
				return i / 2
			}
		}
	case "BF16":
		for i := 0; i+2 <= len(raw); i += 2 {
			if le.Uint16(raw[i:])&0x7f80 == 0x7f80 {
				return i / 2
			}
		}
	case "F64":
		for i := 0; i+8 <= len(raw); i += 8 {
			if le.Uint64(raw[i:])&0x7ff0000000000000 == 0x7ff0000000000000 {
				return i / 8
			}
		}
	}
	return -1
}
