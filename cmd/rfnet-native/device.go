package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
)

// modelFlags are the flags every command that loads a checkpoint shares.
type modelFlags struct {
	weights, tokenizer, modelType, prediction, config, device, dtype string
	offline, tf32                                                    bool
}

func (m *modelFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&m.weights, "weights", "", "checkpoint: a diffusers folder, a .safetensors file (original layout), a Hub repository org/name[@revision], hf://org/name/file.safetensors, or sd14, sd15, sd21-base, sd21")
	fs.StringVar(&m.tokenizer, "tokenizer", "", "tokenizer/ folder or bpe_simple_vocab_16e6.txt.gz (needed for single-file checkpoints)")
	fs.StringVar(&m.modelType, "model-type", "", "override the detected model: sd14, sd15, sd21-base, sd21 (768, v-prediction)")
	fs.StringVar(&m.prediction, "prediction", "", "override the prediction type: epsilon or v")
	fs.StringVar(&m.config, "config", "", "for a single file: a diffusers-style folder whose config files describe it")
	fs.StringVar(&m.device, "device", "cpu", "cpu, cuda, or cuda:N for the N-th GPU")
	fs.BoolVar(&m.tf32, "tf32", false, "cuda, fp32: let matrix products use TF32 tensor cores (faster, about 1e-3 relative error)")
	fs.StringVar(&m.dtype, "dtype", "fp32", "compute dtype: fp32, fp16 or bf16 (fp16/bf16 need --device cuda)")
	fs.BoolVar(&m.offline, "offline", false, "never use the network: Hub names must be in the Hugging Face cache (as HF_HUB_OFFLINE=1)")
}

// backend opens the device the flags name and checks the dtype against it.
func (m *modelFlags) backend() (tensor.Backend, tensor.DType, error) {
	d, err := tensor.ParseDType(m.dtype)
	if err != nil {
		return nil, 0, fmt.Errorf("--dtype: %w", err)
	}
	var b tensor.Backend
	name, ordinal, _ := strings.Cut(m.device, ":")
	switch name {
	case "cpu":
		b = cpu.New()
	case "cuda", "gpu":
		n := 0
		if ordinal != "" {
			if n, err = strconv.Atoi(ordinal); err != nil || n < 0 {
				return nil, 0, fmt.Errorf("--device %q: want cuda:N with N a device number", m.device)
			}
		}
		if b, err = cuda.New(cuda.Options{Ordinal: n, TF32: m.tf32}); err != nil {
			return nil, 0, fmt.Errorf("--device %s: %w", m.device, err)
		}
	default:
		return nil, 0, fmt.Errorf("--device %q: want cpu, cuda or cuda:N", m.device)
	}
	if !b.Computes(d) {
		return nil, 0, fmt.Errorf("--dtype %s: the %s backend computes in fp32 only (fp16 and bf16 need --device cuda)", d, m.device)
	}
	return b, d, nil
}

// load opens the device and loads the checkpoint the flags name onto it.
// The caller closes the model.
func (m *modelFlags) load() (*pipeline.Model, error) {
	b, d, err := m.backend()
	if err != nil {
		return nil, err
	}
	o, err := m.options(b, d)
	if err != nil {
		return nil, err
	}
	return pipeline.Load(m.weights, o)
}

// options turns the flags into load options for backend b.
func (m *modelFlags) options(b tensor.Backend, d tensor.DType) (pipeline.LoadOptions, error) {
	if m.weights == "" {
		return pipeline.LoadOptions{}, fmt.Errorf("--weights is required (a diffusers folder, a .safetensors checkpoint, or a Hub name such as sd21-base)")
	}
	path, err := resolveWeights(m.weights, m.offline, d != tensor.Float32)
	if err != nil {
		return pipeline.LoadOptions{}, err
	}
	m.weights = path
	return pipeline.LoadOptions{ModelType: m.modelType, Prediction: m.prediction, Tokenizer: m.tokenizer,
		ConfigDir: m.config, Backend: b, DType: d}, nil
}
