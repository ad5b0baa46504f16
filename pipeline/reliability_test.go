package pipeline

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// Sizes down to one latent cell run (their noise is torch's scalar path):
// --width 8 --height 8 used to panic in rng.
func TestSmallSizesGenerate(t *testing.T) {
	m := loadTiny(t, "tiny-sd1", false, tensor.Float32)
	for _, s := range [][2]int{{8, 8}, {8, 24}, {24, 8}, {16, 16}} {
		res, err := m.Generate(Request{Prompt: "a cat", Steps: 2, Width: s[0], Height: s[1]}, nil)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		if got := res.Image.Shape(); !got.Equal(tensor.Shape{1, 3, s[1], s[0]}) {
			t.Fatalf("%v: image %v", s, got)
		}
	}
}

// limited is the CPU backend with a fixed amount of available memory.
type limited struct {
	*cpu.Backend
	avail int64
}

func (l limited) AvailableMemory() (int64, error) { return l.avail, nil }

// A size whose activations cannot fit is refused before any work, with the
// estimate, what is available and a size that would fit: --width 100000
// --height 100000 used to run 45 s and die out of memory.
func TestTooLargeIsRefusedUpFront(t *testing.T) {
	m := loadTiny(t, "tiny-sd1", false, tensor.Float32)
	_, err := m.Generate(Request{Prompt: "x", Width: 100000, Height: 100000}, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("100000×100000: %v, want ErrTooLarge", err)
	}
	wantErr(t, err, "100000×100000", "at least", "available", "largest square")

	m.Backend = limited{cpu.New(), 32 << 20}
	need := m.Variant.ActivationBytes(1024, 1024, 2, tensor.Float32)
	if need <= 32<<20 {
		t.Fatalf("tiny model at 1024²: estimate %d, want more than 32 MiB for this test", need)
	}
	wantErr(t, m.Validate(&Request{Prompt: "x", Width: 1024, Height: 1024}), "1024×1024", bytesString(need), "32.0 MiB")
	if err := m.Validate(&Request{Prompt: "x", Width: 64, Height: 64}); err != nil {
		t.Fatalf("64×64 within 32 MiB: %v", err)
	}
}

// The estimate is a lower bound of the released models' use: SD 2.1 fp16 at
// 512² peaked at 5.8 GiB on an H100 with 2.6 GiB of weights; it grows with the
// area, and the VAE's full-resolution convolution dominates.
func TestActivationBytesOfReleasedModels(t *testing.T) {
	for _, v := range []Variant{SD15(), SD21Base()} {
		at512 := v.ActivationBytes(512, 512, 2, tensor.Float16)
		if at512 < 256<<20 || at512 > 3<<30 {
			t.Errorf("%s fp16 512²: %s, want between 256 MiB and 3 GiB (5.8-2.6 GiB measured)", v.Name, bytesString(at512))
		}
		at1024 := v.ActivationBytes(1024, 1024, 2, tensor.Float16)
		if r := float64(at1024) / float64(at512); math.Abs(r-4) > 0.1 {
			t.Errorf("%s: 1024² / 512² = %.2f, want 4", v.Name, r)
		}
		if f32 := v.ActivationBytes(512, 512, 2, tensor.Float32); f32 != 2*at512 {
			t.Errorf("%s: fp32 %d, want twice fp16's %d", v.Name, f32, at512)
		}
	}
}

// NaN weights, NaN initial latents and an overflow each fail with a message
// that says where the non-finite values came from, instead of a black image
// and exit status 0.
func TestNonFiniteIsAnError(t *testing.T) {
	poison := func(t *testing.T, component, tensorName string) *Model {
		dir := copyFolder(t, "tiny-sd1")
		rewrite(t, filepath.Join(dir, component, "diffusion_pytorch_model.safetensors"), func(n string, x *tensor.Tensor) (string, *tensor.Tensor) {
			if n == tensorName {
				v := x.Float32s()
				v[len(v)/2] = float32(math.NaN())
				return n, tensor.FromFloat32(cpu.New(), tensor.Float32, x.Shape(), v)
			}
			return n, x
		})
		m, err := Load(dir, LoadOptions{Backend: cpu.New(), DType: tensor.Float32})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	req := Request{Prompt: "a cat", Steps: 2, Width: 64, Height: 64}
	t.Run("unet weights", func(t *testing.T) {
		m := poison(t, "unet", "conv_in.weight")
		_, err := m.Generate(req, nil)
		if !errors.Is(err, ErrNonFinite) {
			t.Fatalf("%v, want ErrNonFinite", err)
		}
		wantErr(t, err, "prediction at step 1", "unet weights hold NaN", "conv_in.weight", "damaged")
	})
	t.Run("vae weights", func(t *testing.T) {
		m := poison(t, "vae", "decoder.conv_out.weight")
		_, err := m.Generate(req, nil)
		wantErr(t, err, "decoded image", "vae weights hold NaN", "decoder.conv_out.weight")
	})
	t.Run("initial latents", func(t *testing.T) {
		m := loadTiny(t, "tiny-sd1", false, tensor.Float32)
		v := make([]float32, 4*8*8)
		v[3] = float32(math.Inf(1))
		r := req
		r.InitLatents = tensor.FromFloat32(cpu.New(), tensor.Float32, tensor.Shape{1, 4, 8, 8}, v)
		_, err := m.Generate(r, nil)
		wantErr(t, err, "initial latents", "element 3 is +Inf")
	})
	t.Run("overflow", func(t *testing.T) {
		m := loadTiny(t, "tiny-sd1", false, tensor.Float32)
		r := req
		r.Guidance = 1e38
		_, err := m.Generate(r, nil)
		var overflow *OverflowError
		if !errors.Is(err, ErrNonFinite) || !errors.As(err, &overflow) || overflow.DType != tensor.Float32 {
			t.Fatalf("%v, want ErrNonFinite and an fp32 OverflowError", err)
		}
		wantErr(t, err, "weights are finite", "overflowed", "guidance scale")
	})
	t.Run("guidance", func(t *testing.T) {
		m := loadTiny(t, "tiny-sd1", false, tensor.Float32)
		for _, g := range []float64{math.NaN(), math.Inf(1), -1} {
			r := req
			r.Guidance = g
			wantErr(t, m.Validate(&r), "pipeline: guidance", "finite")
		}
	})
}

// The stored bits of a damaged checkpoint are found without converting them.
func TestFirstNonFiniteNamesTheTensor(t *testing.T) {
	dir := copyFolder(t, "tiny-sd1")
	path := filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors")
	rewrite(t, path, func(n string, x *tensor.Tensor) (string, *tensor.Tensor) {
		if n == "decoder.mid_block.resnets.0.conv1.bias" {
			v := x.Float32s()
			v[1] = float32(math.Inf(-1))
			return n, tensor.FromFloat32(cpu.New(), tensor.Float32, x.Shape(), v)
		}
		return n, x
	})
	f, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bad, ok := weights.MapFile(f, "", nil).FirstNonFinite()
	if !ok || bad.Canonical != "decoder.mid_block.resnets.0.conv1.bias" || bad.Index != 1 {
		t.Fatalf("found %+v, %v", bad, ok)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// A FIFO or a device in place of a file of a diffusers folder is refused by
// name: opening the FIFO used to block forever, /dev/zero to read forever.
func TestSpecialFilesInAFolder(t *testing.T) {
	for _, rel := range []string{"unet/config.json", "vae/config.json", "text_encoder/config.json", "scheduler/scheduler_config.json",
		"tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json"} {
		for _, kind := range []string{"fifo", "device"} {
			dir := copyFolder(t, "tiny-sd1")
			p := filepath.Join(dir, filepath.FromSlash(rel))
			os.Remove(p)
			if kind == "fifo" {
				if err := syscall.Mkfifo(p, 0o644); err != nil {
					t.Skip("no mkfifo:", err)
				}
			} else if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				m, err := Load(dir, LoadOptions{Backend: cpu.New(), DType: tensor.Float32})
				if err == nil {
					m.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				wantErr(t, err, rel[strings.LastIndex(rel, "/")+1:], "not a regular file")
			case <-time.After(20 * time.Second):
				t.Fatalf("%s as a %s: Load hung", rel, kind)
			}
		}
	}
}

// A model type of the other family is refused for a folder as for a single
// file: sd21 over an SD 1.x folder used to load silently.
func TestModelTypeOfTheOtherFamilyOnAFolder(t *testing.T) {
	_, err := Load(fixtures.Path("models", "tiny-sd1"), LoadOptions{Backend: cpu.New(), DType: tensor.Float32, ModelType: "sd21"})
	wantOptionError(t, err, "ModelType", "sd21")
	wantErr(t, err, `ModelType "sd21"`, "sd2", "text_encoder/config.json", "choose an sd1 type")
}
