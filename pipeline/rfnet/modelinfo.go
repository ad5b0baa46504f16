package rfnet

import "github.com/rfnet/rfnet-native/pipeline"

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
	Version    string `json:"version"` // of rfnet-native
}

// DescribeModel is m's ModelInfo, without the hash; version is the program's.
func DescribeModel(m *pipeline.Model, version string) ModelInfo {
	return ModelInfo{Weights: m.Path, ModelType: m.Variant.Name, Layout: m.Layout, Prediction: string(m.Variant.Sched.PredictionType),
		Device: m.Backend.Name(), DType: m.DType.String(), Version: version}
}
