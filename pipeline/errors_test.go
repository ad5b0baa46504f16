package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// wantOptionError checks that err is about LoadOptions' field holding value.
func wantOptionError(t *testing.T, err error, field, value string) {
	t.Helper()
	var bad *OptionError
	if !errors.As(err, &bad) || bad.Field != field || bad.Value != value {
		t.Fatalf("error %v, want an OptionError for %s %q", err, field, value)
	}
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

// copyFolder copies a reference diffusers folder (following its links) so a test can damage it.
func copyFolder(t *testing.T, model string) string {
	t.Helper()
	src, dst := fixtures.Path("models", model), filepath.Join(t.TempDir(), model)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// rewrite replaces a safetensors file with edit applied to its tensors.
func rewrite(t *testing.T, path string, edit func(name string, x *tensor.Tensor) (string, *tensor.Tensor)) {
	t.Helper()
	f, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries []weights.Entry
	for _, n := range f.Names() {
		x, err := f.Load(cpu.New(), n, tensor.Float32)
		if err != nil {
			t.Fatal(err)
		}
		if name, y := edit(n, x); y != nil {
			entries = append(entries, weights.Entry{Name: name, Tensor: y, DType: tensor.Float32})
		}
	}
	f.Close()
	if err := weights.Save(path, entries, nil); err != nil {
		t.Fatal(err)
	}
}

func TestBadCheckpoints(t *testing.T) {
	o := LoadOptions{Backend: cpu.New(), DType: tensor.Float32}
	dir := t.TempDir()

	t.Run("not a safetensors file", func(t *testing.T) {
		p := filepath.Join(dir, "notes.safetensors")
		os.WriteFile(p, []byte("these are not weights, just a text file\n"), 0o644)
		_, err := Load(p, o)
		wantErr(t, err, p, "not a safetensors file")
	})
	t.Run("truncated file", func(t *testing.T) {
		data, _ := os.ReadFile(fixtures.Path("models", "tiny-sd1.safetensors"))
		p := filepath.Join(dir, "cut.safetensors")
		os.WriteFile(p, data[:len(data)/2], 0o644)
		_, err := Load(p, o)
		wantErr(t, err, p, "truncated")
	})
	t.Run("missing tensor", func(t *testing.T) {
		m := copyFolder(t, "tiny-sd2")
		rewrite(t, filepath.Join(m, "unet", "diffusion_pytorch_model.safetensors"), func(n string, x *tensor.Tensor) (string, *tensor.Tensor) {
			if n == "down_blocks.1.attentions.0.proj_in.weight" {
				return n, nil
			}
			return n, x
		})
		_, err := Load(m, o)
		wantErr(t, err, "unet", "1 missing", "down_blocks.1.attentions.0.proj_in.weight [16 16]")
	})
	t.Run("misshaped tensor", func(t *testing.T) {
		m := copyFolder(t, "tiny-sd2")
		rewrite(t, filepath.Join(m, "unet", "diffusion_pytorch_model.safetensors"), func(n string, x *tensor.Tensor) (string, *tensor.Tensor) {
			if n == "down_blocks.1.attentions.0.proj_in.weight" {
				return n, x.Reshape(16, 16, 1, 1) // an SD 1.x-style 1×1 conv where SD 2.x has a linear layer
			}
			return n, x
		})
		_, err := Load(m, o)
		wantErr(t, err, "unet", "misshaped", "down_blocks.1.attentions.0.proj_in.weight: shape [16 16 1 1], want [16 16]")
	})
	t.Run("unused tensor", func(t *testing.T) {
		m := copyFolder(t, "tiny-sd2")
		rewrite(t, filepath.Join(m, "vae", "diffusion_pytorch_model.safetensors"), func(n string, x *tensor.Tensor) (string, *tensor.Tensor) {
			if n == "decoder.conv_in.bias" {
				return "decoder.conv_in.extra", x
			}
			return n, x
		})
		_, err := Load(m, o)
		wantErr(t, err, "vae", "missing", "decoder.conv_in.bias", "unused", "decoder.conv_in.extra")
	})
	t.Run("pickle weights", func(t *testing.T) {
		m := copyFolder(t, "tiny-sd2")
		os.Remove(filepath.Join(m, "unet", "diffusion_pytorch_model.safetensors"))
		os.WriteFile(filepath.Join(m, "unet", "diffusion_pytorch_model.bin"), []byte("pickle"), 0o644)
		_, err := Load(m, o)
		wantErr(t, err, "diffusion_pytorch_model.bin", "never pickles")
	})
	t.Run("single file without tokenizer", func(t *testing.T) {
		p := fixtures.Path("models", "tiny-sd1.safetensors")
		_, err := Load(p, LoadOptions{Backend: cpu.New(), DType: tensor.Float32, ConfigDir: fixtures.Path("models", "tiny-sd1")})
		if !errors.Is(err, ErrNoTokenizer) {
			t.Fatalf("%v, want ErrNoTokenizer", err)
		}
		wantErr(t, err, p, "holds no tokenizer", "bpe_simple_vocab_16e6.txt.gz")
	})
	t.Run("model type of the other family", func(t *testing.T) {
		p := fixtures.Path("models", "tiny-sd1.safetensors")
		_, err := Load(p, LoadOptions{Backend: cpu.New(), DType: tensor.Float32, ModelType: "sd21-base", Tokenizer: fixtures.Path("tokenizer", "tiny")})
		wantOptionError(t, err, "ModelType", "sd21-base")
		wantErr(t, err, `ModelType "sd21-base"`, "cond_stage_model.transformer")
	})
	t.Run("unknown model type", func(t *testing.T) {
		_, err := Load(fixtures.Path("models", "tiny-sd1"), LoadOptions{Backend: cpu.New(), DType: tensor.Float32, ModelType: "sdxl"})
		wantOptionError(t, err, "ModelType", "sdxl")
		wantErr(t, err, `"sdxl"`, "sd15", "sd21-base")
	})
}

func TestBadRequests(t *testing.T) {
	m := loadTiny(t, "tiny-sd1", false, tensor.Float32)
	for _, c := range []struct {
		req   Request
		parts []string
	}{
		{Request{Prompt: "x", Width: 60, Height: 64}, []string{"width 60", "multiple of 8"}},
		{Request{Prompt: "x", Width: 64, Height: 100}, []string{"height 100", "multiple of 8"}},
		{Request{Prompt: "x", Scheduler: "lms"}, []string{`"lms"`, "ddim, dpm++2m, euler, pndm"}},
		{Request{Prompt: "x", Steps: -3}, []string{"steps -3"}},
		{Request{Prompt: "x", Width: 64, Height: 64, InitLatents: tensor.Zeros(cpu.New(), tensor.Float32, 1, 4, 16, 16)}, []string{"[1 4 16 16]", "want [1 4 8 8]"}},
	} {
		_, err := m.Generate(c.req, nil)
		wantErr(t, err, c.parts...)
	}
}
