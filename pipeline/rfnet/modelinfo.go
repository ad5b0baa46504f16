package rfnet

import (
	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/pipeline"
)

// ModelInfo describes the model a run used, as the files that record it
// write it under "model": run.json, and a benchmark's bench.json and image
// sidecars.
type ModelInfo struct {
	Weights string `json:"weights"` // the checkpoint file or folder as loaded
	// Hash is the SHA-256 of the weight files. The benchmark records it (and
	// compares it between the processes that share a run); a single run does
	// not, as hashing reads every byte.
	Hash       string `json:"hash,omitempty"`
	ModelType  string `json:"model_type"` // the variant, "sd21-base"
	Layout     string `json:"layout"`     // "diffusers" or "single-file"
	Prediction string `json:"prediction"`
	Device     string `json:"device"`
	DType      string `json:"dtype"`
	// TokenizerSplit is how prompts were cut around the tokenizer's special
	// tokens (clip.Split's name). Files written before it was recorded used
	// open_clip's split, the only one then (see TokenizerSplitOf).
	TokenizerSplit string `json:"tokenizer_split,omitempty"`
	Version        string `json:"version"` // of rfnet-native
}

// TokenizerSplitOf is the split m records, with open_clip's for a file
// written before the split was recorded ("" while m describes no model).
func TokenizerSplitOf(m ModelInfo) string {
	if m.TokenizerSplit == "" && m.ModelType != "" {
		return clip.SplitOpenCLIP.String()
	}
	return m.TokenizerSplit
}

// DescribeModel is m's ModelInfo, without the hash; version is the program's.
func DescribeModel(m *pipeline.Model, version string) ModelInfo {
	return ModelInfo{Weights: m.Path, ModelType: m.Variant.Name, Layout: m.Layout, Prediction: string(m.Variant.Sched.PredictionType),
		Device: m.Backend.Name(), DType: m.DType.String(), TokenizerSplit: tokenizerSplit(m), Version: version}
}

// tokenizerSplit names the split of m's tokenizer ("" for a model loaded
// without one).
func tokenizerSplit(m *pipeline.Model) string {
	if m.Tokenizer == nil {
		return ""
	}
	return m.Tokenizer.Split().String()
}
