package weights

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// FuzzParse feeds arbitrary bytes to the header parser: it must return an error
// or a File whose every tensor can be read, never panic. Seeds live in
// testdata/fuzz/FuzzParse; run with go test -fuzz FuzzParse ./weights.
func FuzzParse(f *testing.F) {
	f.Add(craft(`{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`, 16))
	f.Add(craft(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[],"data_offsets":[6,8]}}`, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parse("fuzz.safetensors", data)
		if err != nil {
			return
		}
		for _, name := range file.Names() {
			raw, info, err := file.Raw(name)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(raw)) != info.Bytes {
				t.Fatalf("%s: %d bytes, info says %d", name, len(raw), info.Bytes)
			}
			if src, ok := floatDType(info.DType); ok && info.Shape.Numel()*src.Size() == len(raw) {
				out := make([]float32, info.Shape.Numel())
				tensor.DecodeRaw(out, src, raw)
			}
		}
	})
}
