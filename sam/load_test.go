package sam

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// tinyTensors reads every tensor of the tiny model's file, by name.
func tinyTensors(t *testing.T) map[string]*tensor.Tensor {
	t.Helper()
	f, err := weights.Open(fixtures.Path("sam", "tiny-sam", WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*tensor.Tensor{}
	for _, n := range f.Names() {
		x, err := f.Load(cpu.New(), n, tensor.Float32)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = x
	}
	return out
}

// writeModel writes a SamModel folder with the tiny config and the given tensors.
func writeModel(t *testing.T, ts map[string]*tensor.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	cfg, err := os.ReadFile(fixtures.Path("sam", "tiny-sam", ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	var entries []weights.Entry
	for n, x := range ts {
		entries = append(entries, weights.Entry{Name: n, Tensor: x, DType: tensor.Float32})
	}
	if err := weights.Save(filepath.Join(dir, WeightsFile), entries, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The positional matrix loads under either of its names, or both when they agree.
func TestPositionalMatrixUnderEitherName(t *testing.T) {
	base := tinyTensors(t)
	pe := base[sharedPE]
	cases := map[string]func(map[string]*tensor.Tensor){
		"alias only": func(ts map[string]*tensor.Tensor) { delete(ts, sharedPE); ts[sharedPEAlias] = pe },
		"both":       func(ts map[string]*tensor.Tensor) { ts[sharedPEAlias] = pe },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			ts := map[string]*tensor.Tensor{}
			for n, x := range base {
				ts[n] = x
			}
			edit(ts)
			m, err := Load(writeModel(t, ts), cpu.New(), tensor.Float32)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.Prompt.PositionalEmbedding.Float64s(), pe.Float64s(); got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
				t.Fatalf("positional matrix not the stored one")
			}
		})
	}
}

// Bad weights are errors that name the tensor (and the shapes when misshaped).
func TestBadWeightsNameTheTensor(t *testing.T) {
	base := tinyTensors(t)
	cases := []struct {
		name string
		edit func(map[string]*tensor.Tensor)
		want []string
	}{
		{"missing", func(ts map[string]*tensor.Tensor) { delete(ts, "mask_decoder.iou_token.weight") },
			[]string{"1 missing", "mask_decoder.iou_token.weight [1 32]"}},
		{"missing positional matrix", func(ts map[string]*tensor.Tensor) { delete(ts, sharedPE) },
			[]string{"missing", sharedPE}},
		{"misshaped", func(ts map[string]*tensor.Tensor) {
			ts["vision_encoder.layers.0.attn.rel_pos_h"] = tensor.Zeros(cpu.New(), tensor.Float32, 7, 16)
		}, []string{"misshaped", "vision_encoder.layers.0.attn.rel_pos_h: shape [7 16], want [5 16]"}},
		{"unexpected", func(ts map[string]*tensor.Tensor) {
			ts["vision_encoder.layers.3.attn.proj.bias"] = tensor.Zeros(cpu.New(), tensor.Float32, 32)
		}, []string{"1 unused", "vision_encoder.layers.3.attn.proj.bias"}},
		{"aliases disagree", func(ts map[string]*tensor.Tensor) {
			ts[sharedPEAlias] = ts[sharedPE].Scale(2)
		}, []string{sharedPE, sharedPEAlias, "different values"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := map[string]*tensor.Tensor{}
			for n, x := range base {
				ts[n] = x
			}
			c.edit(ts)
			_, err := Load(writeModel(t, ts), cpu.New(), tensor.Float32)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestMissingFilesAreNamed(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir, cpu.New(), tensor.Float32); err == nil || !strings.Contains(err.Error(), ConfigFile) {
		t.Errorf("no config: %v", err)
	}
	cfg, _ := os.ReadFile(fixtures.Path("sam", "tiny-sam", ConfigFile))
	os.WriteFile(filepath.Join(dir, ConfigFile), cfg, 0o644)
	if _, err := Load(dir, cpu.New(), tensor.Float32); err == nil || !strings.Contains(err.Error(), WeightsFile) {
		t.Errorf("no weights: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("x"), 0o644)
	if _, err := Load(dir, cpu.New(), tensor.Float32); err == nil || !strings.Contains(err.Error(), "pytorch_model.bin") {
		t.Errorf("only a pickle: %v", err)
	}
}
