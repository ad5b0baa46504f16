package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/tensor"
)

// Sidecar is the JSON file written next to a plain-SD image (SidecarPath):
// what made it, and the source of its PNG's parameters text
// (infotext.OfSidecar). generate and serve both write it through WriteImage.
type Sidecar struct {
	Version        string             `json:"version"`
	Method         string             `json:"method"`
	Prompt         string             `json:"prompt"`
	NegativePrompt string             `json:"negative_prompt"`
	Steps          int                `json:"steps"`
	Guidance       float64            `json:"guidance"`
	Scheduler      string             `json:"scheduler"`
	Seed           *uint64            `json:"seed,omitempty"`
	InitLatents    string             `json:"init_latents,omitempty"`
	Width          int                `json:"width"`
	Height         int                `json:"height"`
	Model          string             `json:"model"`
	ModelType      string             `json:"model_type"`
	Layout         string             `json:"layout"`
	Prediction     string             `json:"prediction"`
	Device         string             `json:"device"`
	DType          string             `json:"dtype"`
	TokenizerSplit string             `json:"tokenizer_split"` // how the prompts were cut around "!" and other special tokens
	Truncated      int                `json:"truncated_prompt_tokens,omitempty"`
	Seconds        map[string]float64 `json:"seconds"`
}

// NewSidecar describes the image res of request r on m. version is the
// program's; initLatents is the file the noise came from ("" when it came
// from r.Seed, which is then recorded); load is how long loading m took.
func NewSidecar(m *Model, r Request, res *Result, version, initLatents string, load time.Duration) Sidecar {
	s := Sidecar{Version: version, Method: "sd", Prompt: r.Prompt, NegativePrompt: r.NegativePrompt,
		Steps: r.Steps, Guidance: r.Guidance, Scheduler: r.Scheduler, InitLatents: initLatents, Width: r.Width, Height: r.Height,
		Model: m.Path, ModelType: m.Variant.Name, Layout: m.Layout, Prediction: string(m.Variant.Sched.PredictionType),
		Device: m.Backend.Name(), DType: m.DType.String(), TokenizerSplit: m.Tokenizer.Split().String(), Truncated: res.Truncated,
		Seconds: map[string]float64{"load": load.Seconds()}}
	if initLatents == "" {
		seed := r.Seed
		s.Seed = &seed
	}
	for k, v := range res.Durations {
		s.Seconds[k] = v.Seconds()
	}
	return s
}

// WriteImage writes the PNG at out, with parameters as its "parameters" text,
// and its JSON sidecar meta (a Sidecar, or refine's RefineSidecar): both in full under temporary names first; then an
// earlier PNG at out goes, the sidecar and, last, the PNG move into place. A
// PNG on disk always has its own sidecar (a full disk used to leave the PNG
// alone), as rfnet's image.png has its out-dir (rfnet.WriteArtifacts).
func WriteImage(out string, img *tensor.Tensor, meta any, parameters string) error {
	sidecar, err := PrepareJSON(SidecarPath(out), meta)
	if err != nil {
		return err
	}
	png, err := PreparePNG(out, ToRGBA(img), map[string]string{"parameters": parameters})
	if err != nil {
		sidecar.Abort()
		return err
	}
	if err := os.Remove(png.Path()); err != nil && !errors.Is(err, fs.ErrNotExist) { // the file, not a link to it
		atomicfile.AbortAll([]*atomicfile.Pending{sidecar, png})
		return err
	}
	return atomicfile.CommitAll([]*atomicfile.Pending{sidecar, png})
}
