package pipeline

// RefineSidecar records one refiner run: the JSON sidecar of refine's
// output, and the "sdxl" entry of an RFNet run.json. It is the source of the
// refined PNG's parameters text (infotext.OfRefineSidecar).
type RefineSidecar struct {
	Version        string `json:"version"`
	Method         string `json:"method"` // "sdxl-refiner" for refine, "rfnet-sdxl" for RFNet's pass
	Prompt         string `json:"prompt"`
	NegativePrompt string `json:"negative_prompt"`
	// Input is the image refined (a file, or RFNet's image.png), Resized the
	// N of the N×N it was resized to first (0: not resized).
	Input                  string  `json:"input"`
	Resized                int     `json:"resized,omitempty"`
	Strength               float64 `json:"strength"`
	Steps                  int     `json:"steps"`     // of the full schedule
	StepsRun               int     `json:"steps_run"` // int(steps·strength)
	Guidance               float64 `json:"guidance"`
	AestheticScore         float64 `json:"aesthetic_score"`
	NegativeAestheticScore float64 `json:"negative_aesthetic_score"`
	Scheduler              string  `json:"scheduler"`
	Seed                   uint64  `json:"seed"`
	Width                  int     `json:"width"`
	Height                 int     `json:"height"`
	// Weights is the refiner as it was named (a Hub alias such as
	// sdxl-refiner), when that is not the path loaded, Model.
	Weights        string             `json:"weights,omitempty"`
	Model          string             `json:"model"`
	ModelType      string             `json:"model_type"`
	Layout         string             `json:"layout"`
	Device         string             `json:"device"`
	DType          string             `json:"dtype"`
	TokenizerSplit string             `json:"tokenizer_split"`
	Truncated      int                `json:"truncated_prompt_tokens,omitempty"`
	Seconds        map[string]float64 `json:"seconds"`
}

// NewRefineSidecar describes the refinement res of request q on r; the
// caller fills in Method, Input, Resized, Weights and Seconds.
func NewRefineSidecar(r *Refiner, q RefineRequest, res *RefineResult, version string) RefineSidecar {
	return RefineSidecar{Version: version, Prompt: q.Prompt, NegativePrompt: q.NegativePrompt,
		Strength: q.Strength, Steps: q.Steps, StepsRun: len(res.Timesteps), Guidance: q.Guidance,
		AestheticScore: q.AestheticScore, NegativeAestheticScore: q.NegativeAestheticScore, Scheduler: RefineScheduler,
		Seed: q.Seed, Width: q.Image.Dim(3), Height: q.Image.Dim(2), Model: r.Path, ModelType: r.Variant.Name,
		Layout: r.Layout, Device: r.Backend.Name(), DType: r.DType.String(), TokenizerSplit: r.Tokenizer.Split().String(),
		Truncated: res.Truncated, Seconds: map[string]float64{}}
}
