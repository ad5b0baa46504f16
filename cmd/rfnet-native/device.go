package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// modelFlags are the flags every command that loads a checkpoint shares.
type modelFlags struct {
	weights, tokenizer, modelType, prediction, config, device, dtype string
	tokenizerSplit                                                   string
	offline, tf32                                                    bool
}

func (m *modelFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&m.weights, "weights", "", "checkpoint: a diffusers folder, a .safetensors file (original layout), a Hub repository org/name[@revision], hf://org/name/file.safetensors, or sd14, sd15, sd21-base, sd21")
	fs.StringVar(&m.tokenizer, "tokenizer", "", "tokenizer/ folder or bpe_simple_vocab_16e6.txt.gz (default: a folder's own; for a single file, its family's from the Hugging Face cache or the Hub)")
	registerTokenizerSplit(fs, &m.tokenizerSplit)
	fs.StringVar(&m.modelType, "model-type", "", "override the detected model: sd14, sd15, sd21-base, sd21 (768, v-prediction)")
	fs.StringVar(&m.prediction, "prediction", "", "override the prediction type: epsilon or v")
	fs.StringVar(&m.config, "config", "", "for a single file: a diffusers-style folder whose config files describe it")
	m.registerDevice(fs)
	fs.BoolVar(&m.offline, "offline", false, "never use the network: Hub names must be in the Hugging Face cache (as HF_HUB_OFFLINE=1)")
}

// registerDevice registers --device, --tf32 and --dtype.
func (m *modelFlags) registerDevice(fs *pflag.FlagSet) {
	fs.StringVar(&m.device, "device", defaultDevice(), "auto (the GPU when this binary has CUDA and one answers, else the CPU), cpu, cuda, or cuda:N for the N-th GPU; $"+deviceEnv+" sets the default")
	fs.BoolVar(&m.tf32, "tf32", false, "cuda, fp32: let matrix products use TF32 tensor cores (faster, about 1e-3 relative error)")
	fs.StringVar(&m.dtype, "dtype", "auto", "compute dtype: auto (fp16 on a GPU, fp32 on the CPU), fp32, fp16 or bf16 (fp16/bf16 need a GPU)")
}

// deviceEnv names the variable that sets --device's default (a deployment's
// choice without a flag in every command; the tests pin the CPU with it).
const deviceEnv = "RFNET_DEVICE"

func defaultDevice() string {
	if d := os.Getenv(deviceEnv); d != "" {
		return d
	}
	return "auto"
}

// backend opens the device the flags name and resolves the dtype on it:
// auto is fp16 where the backend computes in fp16 (a GPU), else fp32.
func (m *modelFlags) backend() (tensor.Backend, tensor.DType, error) {
	var d tensor.DType
	if m.dtype != "auto" {
		var err error
		if d, err = tensor.ParseDType(m.dtype); err != nil {
			return nil, 0, fmt.Errorf("--dtype: %w", err)
		}
	}
	b, err := m.open()
	if err != nil {
		return nil, 0, err
	}
	if m.dtype == "auto" {
		d = tensor.Float32
		if b.Computes(tensor.Float16) {
			d = tensor.Float16
		}
	}
	if !b.Computes(d) {
		return nil, 0, fmt.Errorf("--dtype %s: %s computes in fp32 only (fp16 and bf16 need --device cuda)", d, b.Name())
	}
	return b, d, nil
}

// open opens the device --device names.
func (m *modelFlags) open() (tensor.Backend, error) {
	name, ordinal, _ := strings.Cut(m.device, ":")
	switch {
	case name == "cpu" && ordinal == "":
		return cpu.New(), nil
	case name == "auto" && ordinal == "":
		return autoDevice(func() (tensor.Backend, error) { return cuda.New(cuda.Options{TF32: m.tf32}) }, cuda.Compiled, os.Stderr)
	case name == "cuda" || name == "gpu":
		n := 0
		if ordinal != "" {
			var err error
			if n, err = strconv.Atoi(ordinal); err != nil || n < 0 {
				return nil, fmt.Errorf("--device %q%s: want cuda:N with N a device number", m.device, fromEnv(m.device))
			}
		}
		b, err := cuda.New(cuda.Options{Ordinal: n, TF32: m.tf32})
		if errors.Is(err, tensor.ErrNoDevice) {
			return nil, fmt.Errorf("--device %s: %w (--device cpu runs on the CPU)", m.device, err)
		}
		if err != nil {
			return nil, fmt.Errorf("--device %s: %w", m.device, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("--device %q%s: want auto, cpu, cuda or cuda:N", m.device, fromEnv(m.device))
}

// fromEnv says where a --device value came from when it was $RFNET_DEVICE.
func fromEnv(device string) string {
	if os.Getenv(deviceEnv) == device {
		return " (from $" + deviceEnv + ")"
	}
	return ""
}

// autoDevice is --device auto: the GPU that openGPU opens, else the CPU when
// there is none (no driver, no device, or a binary built without CUDA: the
// first two get a note on w, since whoever built with CUDA expected a GPU).
// A GPU that is there but unusable (too old, or a driver that cannot load the kernels) is an error,
// not an hour-long run on the CPU that nobody asked for.
func autoDevice(openGPU func() (tensor.Backend, error), compiled bool, w io.Writer) (tensor.Backend, error) {
	b, err := openGPU()
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, tensor.ErrNoDevice):
		if compiled {
			fmt.Fprintf(w, "rfnet-native: no GPU (%v); running on the CPU\n", err)
		}
		return cpu.New(), nil
	}
	return nil, fmt.Errorf("--device auto: %w (--device cpu runs on the CPU)", err)
}

// load opens the device and loads the checkpoint the flags name onto it.
// The caller closes the model.
func (m *modelFlags) load() (*pipeline.Model, error) { return m.loadContext(context.Background()) }

// loadContext is load with a Hub download that ctx can stop (a bench that
// caught Ctrl-C or SIGTERM must not wait for gigabytes to arrive).
func (m *modelFlags) loadContext(ctx context.Context) (*pipeline.Model, error) {
	b, d, err := m.backend()
	if err != nil {
		return nil, err
	}
	path, o, err := m.options(ctx, b, d)
	if err != nil {
		return nil, err
	}
	model, err := pipeline.Load(path, o)
	return model, loadFlagError(err)
}

// optionFlags are the flags that set the LoadOptions fields a load can refuse
// (pipeline.OptionError's Field).
var optionFlags = map[string]string{"ModelType": "--model-type", "Prediction": "--prediction"}

// loadFlagError names the flag a load error is about: pipeline names the
// LoadOptions field, or the config files a single file needs, which the
// user gave (or can give) with a flag; weights, the pickle whose converted
// folder --weights takes instead. Any other error stays as it is.
func loadFlagError(err error) error {
	var bad *pipeline.OptionError
	switch {
	case errors.As(err, &bad) && optionFlags[bad.Field] != "":
		return fmt.Errorf("%s %s: %w", optionFlags[bad.Field], bad.Value, bad.Err)
	case errors.Is(err, pipeline.ErrNeedsConfig):
		return fmt.Errorf("%w (pass --config DIR, a diffusers-style folder with its unet/, vae/ and text_encoder/ config.json)", err)
	case errors.Is(err, weights.ErrPickle):
		return fmt.Errorf("%w: pass it as --weights DIR", err)
	}
	return err
}

// options resolves --weights (a Hub name is downloaded) to the path to load
// and turns the other flags into load options for backend b.
func (m *modelFlags) options(ctx context.Context, b tensor.Backend, d tensor.DType) (string, pipeline.LoadOptions, error) {
	if m.weights == "" {
		return "", pipeline.LoadOptions{}, fmt.Errorf("--weights is required (a diffusers folder, a .safetensors checkpoint, or a Hub name such as sd21-base)")
	}
	split, err := parseTokenizerSplit(m.tokenizerSplit)
	if err != nil {
		return "", pipeline.LoadOptions{}, err
	}
	path, err := resolveWeights(ctx, m.weights, m.offline, d != tensor.Float32)
	if err != nil {
		return "", pipeline.LoadOptions{}, err
	}
	return path, pipeline.LoadOptions{ModelType: m.modelType, Prediction: m.prediction, Tokenizer: m.tokenizer,
		FindTokenizer: func(f pipeline.Family) (string, error) {
			return singleFileTokenizer(ctx, path, f, m.offline, os.Stderr)
		},
		TokenizerSplit: split, ConfigDir: m.config, Backend: b, DType: d}, nil
}
