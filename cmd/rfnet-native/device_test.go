package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

// The commands' tests run on the CPU unless they name a device: with the
// cuda tag and the emulator (make test-emu), --device auto would put every
// one of them on the emulated GPU in fp16.
func TestMain(m *testing.M) {
	os.Setenv(deviceEnv, "cpu")
	os.Exit(fixtures.RunWithTempCache(m))
}

// fakeGPU stands for an opened GPU: a backend that computes in fp16.
type fakeGPU struct{ tensor.Backend }

func (fakeGPU) Name() string                 { return "cuda:0 fake" }
func (fakeGPU) Computes(d tensor.DType) bool { return d != tensor.Float64 }
func opens(b tensor.Backend, err error) func() (tensor.Backend, error) {
	return func() (tensor.Backend, error) { return b, err }
}

func TestAutoDevice(t *testing.T) {
	noGPU := fmt.Errorf("cuda: no CUDA driver (libcuda.so.1): %w", tensor.ErrNoDevice)
	for _, c := range []struct {
		name      string
		open      func() (tensor.Backend, error)
		compiled  bool
		wantName  string
		wantNote  bool
		wantError string
	}{
		{"a GPU answers", opens(fakeGPU{}, nil), true, "cuda:0 fake", false, ""},
		{"built with CUDA, no GPU", opens(nil, noGPU), true, cpu.New().Name(), true, ""},
		{"built without CUDA", opens(nil, noGPU), false, cpu.New().Name(), false, ""},
		{"a GPU too old", opens(nil, fmt.Errorf("cuda: Tesla T4 has compute capability 7.5: %w", tensor.ErrUnsupported)), true, "", false, "--device cpu runs on the CPU"},
		{"a driver error", opens(nil, errors.New("cuda: load module norm: CUDA error 222")), true, "", false, "CUDA error 222"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var note strings.Builder
			b, err := autoDevice(c.open, c.compiled, &note)
			if c.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantError) || !strings.Contains(err.Error(), "--device auto") {
					t.Fatalf("error %v, want one with %q", err, c.wantError)
				}
				return
			}
			if err != nil || b.Name() != c.wantName {
				t.Fatalf("got %v, %v; want %s", b, err, c.wantName)
			}
			if got := note.Len() > 0; got != c.wantNote || (got && !strings.Contains(note.String(), "libcuda.so.1")) {
				t.Errorf("note %q (want one: %v)", note.String(), c.wantNote)
			}
		})
	}
}

// --dtype auto is fp16 where the backend computes in it, fp32 on the CPU;
// the default --device comes from $RFNET_DEVICE.
func TestDeviceAndDTypeDefaults(t *testing.T) {
	t.Setenv(deviceEnv, "")
	if got := defaultDevice(); got != "auto" {
		t.Fatalf("default device %q", got)
	}
	if !cuda.Compiled {
		m := modelFlags{device: "auto", dtype: "auto"}
		b, d, err := m.backend()
		if err != nil || b.Name() != cpu.New().Name() || d != tensor.Float32 {
			t.Fatalf("auto without CUDA: %v %v %v", b, d, err)
		}
	}
	t.Setenv(deviceEnv, "tpu")
	m := modelFlags{device: defaultDevice(), dtype: "auto"}
	if _, _, err := m.backend(); err == nil || !strings.Contains(err.Error(), "$"+deviceEnv) {
		t.Fatalf("a bad $%s: %v", deviceEnv, err)
	}
	for _, c := range []struct{ device, dtype, want string }{
		{"auto:1", "auto", `--device "auto:1"`},
		{"cpu", "fp64x", "--dtype"},
		{"cpu", "bf16", "fp16 and bf16 need --device cuda"},
	} {
		m := modelFlags{device: c.device, dtype: c.dtype}
		if _, _, err := m.backend(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: error %v, want %q", c.device, c.dtype, err, c.want)
		}
	}
}

// pipeline names the LoadOptions field it refuses; the command line names the
// flag that set it, with its value and pipeline's reason.
func TestLoadErrorsNameTheFlag(t *testing.T) {
	folder, single := fixtures.Path("models", "tiny-sd1"), fixtures.Path("models", "tiny-sd1.safetensors")
	for _, c := range []struct {
		args []string
		want []string
	}{
		// A model type of the other family: sd21 over an SD 1.x folder used to load silently.
		{[]string{"inspect", "--weights", folder, "--model-type", "sd21"},
			[]string{"--model-type sd21", "sd2", "text_encoder/config.json", "choose an sd1 type"}},
		{[]string{"inspect", "--weights", single, "--config", folder, "--model-type", "sd21-base"},
			[]string{"--model-type sd21-base", "cond_stage_model.transformer"}},
		{[]string{"inspect", "--weights", folder, "--model-type", "sdxl"}, []string{"--model-type sdxl: no such model type", "sd15", "sd21-base"}},
		{[]string{"inspect", "--weights", folder, "--prediction", "x0"}, []string{"--prediction x0", "want epsilon or v"}},
		{[]string{"tokenize", "--tokenizer", fixtures.Path("tokenizer", "tiny"), "--model-type", "sdxl", "--prompt", "x"},
			[]string{"--model-type sdxl: no such model type"}},
	} {
		err := run(c.args)
		for _, want := range c.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%v: %v, want an error with %q", c.args, err, want)
			}
		}
	}
}

// --device cuda on a binary without the CUDA backend names the flag that
// runs on the CPU; the library's error names none.
func TestDeviceCUDAWithoutBackendNamesTheCPUFlag(t *testing.T) {
	if cuda.Compiled {
		t.Skip("this binary has the CUDA backend")
	}
	_, err := (&modelFlags{device: "cuda"}).open()
	if err == nil || !strings.Contains(err.Error(), "--device cpu runs on the CPU") {
		t.Fatalf("%v", err)
	}
	if _, err := cuda.New(cuda.Options{}); err == nil || strings.Contains(err.Error(), "--") {
		t.Fatalf("the library's error names a flag: %v", err)
	}
}
