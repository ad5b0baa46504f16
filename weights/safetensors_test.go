package weights

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// craft builds a safetensors file from a literal header and a payload of n bytes.
func craft(header string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, n)...)
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSaveOpenRoundTrip(t *testing.T) {
	b := cpu.New()
	x := backendtest.Randn(b, tensor.Float32, 1, 2, 3, 4)
	scalar := tensor.FromFloat64(b, tensor.Float32, tensor.Shape{}, []float64{4.6052})
	path := filepath.Join(t.TempDir(), "m.safetensors")
	entries := []Entry{{"a.f32", x, tensor.Float32}, {"b.f16", x, tensor.Float16}, {"c.bf16", x, tensor.BFloat16},
		{"d.f64", x.To(tensor.Float64), tensor.Float64}, {"logit_scale", scalar, tensor.Float32}}
	if err := Save(path, entries, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := strings.Join(f.Names(), ","); got != "a.f32,b.f16,c.bf16,d.f64,logit_scale" {
		t.Fatalf("names %s", got)
	}
	if f.Metadata()["format"] != "pt" {
		t.Fatalf("metadata %v", f.Metadata())
	}
	tol := map[string]float64{"a.f32": 0, "b.f16": 1e-3, "c.bf16": 8e-3, "d.f64": 0}
	for name, tl := range tol {
		info, _ := f.Info(name)
		if !info.Shape.Equal(tensor.Shape{2, 3, 4}) {
			t.Fatalf("%s: shape %v", name, info.Shape)
		}
		for _, d := range []tensor.DType{tensor.Float32, tensor.Float64} {
			got, err := f.Load(b, name, d)
			if err != nil {
				t.Fatal(err)
			}
			backendtest.AssertClose(t, got, x, tl)
		}
		v, _, err := f.Float32s(name)
		if err != nil {
			t.Fatal(err)
		}
		backendtest.AssertClose(t, tensor.FromFloat32(b, tensor.Float32, tensor.Shape{2, 3, 4}, v), x, tl)
	}
	if got, _ := f.Load(b, "logit_scale", tensor.Float32); got.Rank() != 0 || float32(got.Item()) != float32(4.6052) {
		t.Fatalf("scalar: %v", got)
	}
	if _, err := f.Load(b, "missing", tensor.Float32); err == nil || !strings.Contains(err.Error(), `no tensor "missing"`) {
		t.Fatalf("missing tensor: %v", err)
	}
}

func TestIntegerTensorIsNotFloat(t *testing.T) {
	path := writeTemp(t, "ids.safetensors", craft(`{"position_ids":{"dtype":"I64","shape":[1,2],"data_offsets":[0,16]}}`, 16))
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Load(cpu.New(), "position_ids", tensor.Float32); err == nil || !strings.Contains(err.Error(), "I64") {
		t.Fatalf("loading I64 as float: %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	valid := craft(`{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`, 16)
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"empty", "too short", nil},
		{"text file", "header length", []byte("this is a text file, not weights\n")},
		{"header too large", "exceeds the format's limit", binary.LittleEndian.AppendUint64(nil, 1<<40)},
		{"truncated header", "truncated: the header is", valid[:20]},
		{"truncated data", `truncated or corrupt: tensor "w" occupies bytes [0, 16)`, valid[:len(valid)-3]},
		{"not json", "not a JSON object", craft(`[1,2,3]`, 0)},
		{"malformed json", "malformed header", craft(`{"w":{"dtype":"F32",`, 0)},
		{"unknown dtype", "malformed header", craft(`{"w":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}}`, 2)},
		{"overlap", `tensors "a" [0, 8) and "b" [4, 12) overlap`,
			craft(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12)},
		{"past the end", `tensor "a" occupies bytes [0, 400)`, craft(`{"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}`, 8)},
		{"size mismatch", `tensor "a": F16 [3 3] needs 18 bytes but its data offsets span 16`,
			craft(`{"a":{"dtype":"F16","shape":[3,3],"data_offsets":[0,16]}}`, 16)},
		{"reversed offsets", "reversed", craft(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, 8)},
		{"gap", "gap in the data", craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8)},
		{"trailing bytes", "belong to no tensor", craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8)},
		{"huge shape", "needs", craft(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4)},
		// These were reported as "bytes of data after the last tensor".
		{"negative offset", `tensor "a": data_offsets[0] is -4: want a whole number`, craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, 4)},
		{"overflowing offset", `tensor "a": data_offsets[1] is 18446744073709551620`, craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551620]}}`, 4)},
		{"negative shape", `tensor "a": shape[0] is -1`, craft(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4)},
		{"fractional offset", `tensor "a": data_offsets[1] is 4.5`, craft(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}`, 4)},
		// PyTorch checkpoints used to read as "header length 328533120 exceeds the format's limit".
		{"torch zip checkpoint", "a PyTorch checkpoint (torch.save's zip", append([]byte("PK\x03\x04\x00\x00\x08\x08"), make([]byte, 64)...)},
		{"pickle", "a Python pickle", append([]byte{0x80, 0x02, 0x7d, 0x71}, make([]byte, 64)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "bad.safetensors", c.data)
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("opened a bad file without error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q should name the file and say %q", err, c.want)
			}
			// A pickle is ErrPickle, for a caller to say where the converted folder goes.
			if pickle := c.name == "torch zip checkpoint" || c.name == "pickle"; pickle != errors.Is(err, ErrPickle) || strings.Contains(err.Error(), "--weights") {
				t.Fatalf("error %q: ErrPickle %v, want %v and no flag", err, errors.Is(err, ErrPickle), pickle)
			}
		})
	}
	// Header lengths whose first bytes look like a pickle's (0x80 0x02..0x05)
	// are still safetensors files when a JSON header follows.
	entry := `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	for _, n := range []int{640, 896, 1152, 1408} {
		path := writeTemp(t, "ok.safetensors", craft(entry+strings.Repeat(" ", n-len(entry)), 4))
		f, err := Open(path)
		if err != nil {
			t.Fatalf("header of %d bytes: %v", n, err)
		}
		f.Close()
	}
	fifo := filepath.Join(t.TempDir(), "fifo.safetensors")
	if err := syscall.Mkfifo(fifo, 0o644); err == nil {
		// Opening a FIFO for reading blocks until a writer comes: refused before.
		if _, err := Open(fifo); err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("fifo: %v", err)
		}
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Fatalf("folder: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "nope.safetensors")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}

// Float32s reads a float tensor to the host as float32 through
// tensor.DecodeRaw, which the round trip checks beside Load.
func (f *File) Float32s(name string) ([]float32, tensor.Shape, error) {
	raw, info, err := f.Raw(name)
	if err != nil {
		return nil, nil, err
	}
	src, ok := floatDType(info.DType)
	if !ok {
		return nil, nil, fmt.Errorf("weights: %s: tensor %q is %s: %w", f.path, name, info.DType, ErrNotFloat)
	}
	out := make([]float32, info.Shape.Numel())
	tensor.DecodeRaw(out, src, raw)
	return out, info.Shape, nil
}
