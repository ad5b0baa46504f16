package rfnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/tensor"
)

// The settings of the SDXL refiner pass of the published run (algorithm
// notes §11.2), in one place. The strength is the config's sdxl_step_ratio;
// steps, guidance and aesthetic scores are the refiner pipeline's defaults.
const (
	// SDXLNegativeTail follows the plan's negative prompt and ", ".
	SDXLNegativeTail = "drawing, painting, crayon, sketch, graphite, impressionist, noisy, blurry, soft, deformed, ugly"
	// SDXLSeedOffset is added to bg_seed.
	SDXLSeedOffset = 7890
	// SDXLSize is the side the image is resized to (Lanczos) before refining.
	SDXLSize = 1024
	// SDXLImage is the refined image's name in the out-dir, beside image.png.
	SDXLImage = "image-sdxl.png"
	// SDXLMethod is the Method of the refined image's parameters text.
	SDXLMethod = "rfnet-sdxl"
)

// SDXL is a refiner pass to run after RFNet's overall run.
type SDXL struct {
	Refiner    *pipeline.Refiner
	Checkpoint infotext.Checkpoint // the refiner's, for the parameters text
	Weights    string              // the refiner as the user named it (a Hub alias, a path)
	// Size overrides SDXLSize (0: SDXLSize); a smaller one is for tests and trials.
	Size    int
	Version string
	Context context.Context // cancels between denoising steps; may be nil
	// Progress is called after each of the pass's SDXLStepsRun steps; may be nil.
	Progress pipeline.Progress
}

// SDXLStepsRun is the number of denoising steps the refiner pass of a run
// with cfg takes (int(50·sdxl_step_ratio): 15 at the published 0.3).
func SDXLStepsRun(cfg Config) int {
	return pipeline.RefineRequest{Steps: pipeline.DefaultRefineSteps, Strength: cfg.SDXLStepRatio}.StepsRun()
}

// SDXLRequest is §11.2's refinement of res, the result of a run with cfg, on
// r: the ORIGINAL caption (not the overall prompt), the plan's negative
// prompt + ", " + SDXLNegativeTail, the image as its PNG has it (8 bits a
// channel, as diffusers hands on a PIL image) resized to size×size with
// Lanczos, strength sdxl_step_ratio of 50 steps, guidance 5, aesthetic
// scores 6 and 2.5, and seed bg_seed + 7890.
func SDXLRequest(r *pipeline.Refiner, res *Result, cfg Config, size int) (pipeline.RefineRequest, error) {
	return SDXLImageRequest(r, res.Image, res.Plan.Prompt, res.Plan.Negative, cfg, size)
}

// SDXLImageRequest is SDXLRequest for any image [1, 3, H, W] in [0, 1] with
// its caption and negative prompt (bench's sd-sdxl: a plain SD image, "").
func SDXLImageRequest(r *pipeline.Refiner, image *tensor.Tensor, caption, negative string, cfg Config, size int) (pipeline.RefineRequest, error) {
	if !(cfg.SDXLStepRatio > 0) {
		return pipeline.RefineRequest{}, fmt.Errorf("rfnet: sdxl: %w", &KeyError{Key: "sdxl_step_ratio",
			Err: fmt.Errorf("sdxl_step_ratio %v: the refiner pass wants (0, 1]", cfg.SDXLStepRatio)})
	}
	if size == 0 {
		size = SDXLSize
	}
	im, err := pipeline.ResizeLanczos(pipeline.ToRGBA(image), size, size)
	if err != nil {
		return pipeline.RefineRequest{}, fmt.Errorf("rfnet: sdxl: %w", err)
	}
	q := pipeline.NewRefineRequest(pipeline.FromImage(r.Backend, r.DType, im), caption)
	q.NegativePrompt = negative + ", " + SDXLNegativeTail
	q.Strength = cfg.SDXLStepRatio
	q.Seed = cfg.BgSeed + SDXLSeedOffset
	return q, nil
}

// SDXLResult is a refiner pass's image and its record (run.json's "sdxl").
type SDXLResult struct {
	Refined *pipeline.RefineResult
	Record  pipeline.RefineSidecar
	// Parameters is the refined image's parameters text (its PNG's).
	Parameters string
}

// RefineToDir runs s on res (a run with cfg whose artifacts are in dir):
// writes dir/image-sdxl.png with its parameters text, adds the record as
// "sdxl" to dir/run.json and rewrites dir/index.html to show the refined
// image, all prepared in full before any is replaced;
// with image set, it copies the refined PNG there too. image.png stays.
func RefineToDir(s SDXL, dir string, res *Result, cfg Config, image string) (*SDXLResult, error) {
	size := s.Size
	if size == 0 {
		size = SDXLSize
	}
	q, err := SDXLRequest(s.Refiner, res, cfg, size)
	if err != nil {
		return nil, err
	}
	q.Context, q.Progress = s.Context, s.Progress
	start := time.Now()
	refined, err := s.Refiner.Refine(q)
	if err != nil {
		return nil, fmt.Errorf("rfnet: sdxl: %w", err)
	}
	rec := pipeline.NewRefineSidecar(s.Refiner, q, refined, s.Version)
	rec.Method, rec.Input, rec.Resized, rec.Weights = SDXLMethod, "image.png", size, s.Weights
	rec.Seconds["refine"] = time.Since(start).Seconds()
	params := infotext.OfRefineSidecar(rec, s.Checkpoint).Format()
	runJSON := filepath.Join(dir, "run.json")
	info, err := withSDXL(runJSON, rec)
	if err != nil {
		return nil, err
	}
	page, err := indexPage(res, cfg, &rec)
	if err != nil {
		return nil, err
	}
	var files []*atomicfile.Pending
	for _, f := range []func() (*atomicfile.Pending, error){
		func() (*atomicfile.Pending, error) { return atomicfile.PrepareBytes(runJSON, info) },
		func() (*atomicfile.Pending, error) {
			return atomicfile.PrepareBytes(filepath.Join(dir, indexFile), page)
		},
		func() (*atomicfile.Pending, error) {
			return pipeline.PreparePNG(filepath.Join(dir, SDXLImage), pipeline.ToRGBA(refined.Image), map[string]string{"parameters": params})
		},
	} {
		p, err := f()
		if err != nil {
			atomicfile.AbortAll(files)
			return nil, err
		}
		files = append(files, p)
	}
	if err := atomicfile.CommitAll(files); err != nil {
		return nil, err
	}
	if image != "" {
		if err := pipeline.WritePNG(image, pipeline.ToRGBA(refined.Image), map[string]string{"parameters": params}); err != nil {
			return nil, err
		}
	}
	return &SDXLResult{Refined: refined, Record: rec, Parameters: params}, nil
}

// withSDXL is the run.json at path with "sdxl": rec added as its last key,
// the rest byte for byte as WriteArtifacts wrote it.
func withSDXL(path string, rec pipeline.RefineSidecar) ([]byte, error) {
	raw, err := regular.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rfnet: sdxl: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("rfnet: sdxl: %s: %w", path, err)
	}
	if _, ok := fields["sdxl"]; ok {
		return nil, fmt.Errorf("rfnet: sdxl: %s already records a refiner pass", path)
	}
	entry, err := json.MarshalIndent(rec, "  ", "  ")
	if err != nil {
		return nil, err
	}
	body := bytes.TrimRight(raw, " \t\r\n")
	body = bytes.TrimSuffix(body, []byte("}"))
	body = bytes.TrimRight(body, " \t\r\n")
	out := append(append(append([]byte(nil), body...), ",\n  \"sdxl\": "...), entry...)
	out = append(out, "\n}\n"...)
	if !json.Valid(out) {
		return nil, fmt.Errorf("rfnet: sdxl: %s: cannot add the refiner's record", path)
	}
	return out, nil
}
