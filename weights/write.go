package weights

import (
	"fmt"
	"io"

	"github.com/nlpodyssey/safetensors"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/tensor"
)

// Entry is one tensor to save, stored as DType (F32, F16, BF16 or F64).
type Entry struct {
	Name   string
	Tensor *tensor.Tensor
	DType  tensor.DType
}

// view adapts encoded bytes to the library's View interface.
type view struct {
	dtype safetensors.DType
	shape []uint64
	data  []byte
}

func (v view) DType() safetensors.DType { return v.dtype }
func (v view) Shape() []uint64          { return v.shape }
func (v view) Data() []byte             { return v.data }
func (v view) DataLen() uint64          { return uint64(len(v.data)) }

var storeCodes = map[tensor.DType]safetensors.DType{
	tensor.Float32: safetensors.F32, tensor.Float16: safetensors.F16,
	tensor.BFloat16: safetensors.BF16, tensor.Float64: safetensors.F64,
}

// Save writes entries to path atomically (a partly written file never replaces
// an existing one), with meta as the header's __metadata__.
func Save(path string, entries []Entry, meta map[string]string) error {
	views := make(map[string]view, len(entries))
	for _, e := range entries {
		code, ok := storeCodes[e.DType]
		if !ok {
			return fmt.Errorf("weights: save %s: tensor %q: cannot store as %s", path, e.Name, e.DType)
		}
		if _, dup := views[e.Name]; dup {
			return fmt.Errorf("weights: save %s: tensor %q given twice", path, e.Name)
		}
		var data []byte
		if e.DType == tensor.Float64 {
			data = tensor.EncodeRaw(e.DType, e.Tensor.Float64s())
		} else {
			data = tensor.EncodeRaw(e.DType, e.Tensor.Float32s())
		}
		shape := make([]uint64, e.Tensor.Rank())
		for i, d := range e.Tensor.Shape() {
			shape[i] = uint64(d)
		}
		views[e.Name] = view{code, shape, data}
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		return safetensors.SerializeToWriter(views, meta, w)
	})
}
