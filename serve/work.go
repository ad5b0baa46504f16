package serve

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/serve/jobs"
	"github.com/rfnet/rfnet-native/tensor"
)

// sdJob is a plain-SD job as it is stored (Job.Request): validated, with
// every default filled and the seed drawn, so that a restart runs it the same.
type sdJob struct {
	API            string  `json:"api"` // openai or a1111
	Prompt         string  `json:"prompt"`
	NegativePrompt string  `json:"negative_prompt"`
	Steps          int     `json:"steps"`
	Guidance       float64 `json:"guidance"`
	Scheduler      string  `json:"scheduler"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	Seed           uint64  `json:"seed"` // image i gets Seed + i
	Images         int     `json:"images"`
}

// rfnetJob is an RFNet job as it is stored. Without Plan the Work asks the
// planner for one first (again after a restart).
type rfnetJob struct {
	API          string       `json:"api"` // rfnet or openai
	Prompt       string       `json:"prompt"`
	Plan         *llm.Plan    `json:"plan,omitempty"`
	Config       rfnet.Config `json:"config"`
	PreviewEvery int          `json:"preview_every"`
	Images       int          `json:"images"` // image i moves both seeds by i, as generate's --batch-count
	// SDXL refines each image with the server's SDXL refiner (Options.SDXL):
	// the job's image is then the refined one.
	SDXL bool `json:"sdxl,omitempty"`
}

// result is a job's summary (Job.Result) for both kinds: per image, in seed
// order, its seed, its file and its parameters text.
type result struct {
	Seeds     []uint64 `json:"seeds"`
	Images    []string `json:"images"`
	Infotexts []string `json:"infotexts"`
}

// sdImage is the name of image i of an sd job of n images (its JSON
// sidecar is beside it, pipeline.SidecarPath).
func sdImage(i, n int) string {
	if n == 1 {
		return "image.png"
	}
	return fmt.Sprintf("image-%d.png", i)
}

// rfnetDir is the folder of image i of an rfnet job of n images, relative to
// the job's: generate's out-dir rule (seed-<seed>/ for a batch).
func rfnetDir(n int, seed uint64) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf("seed-%d", seed)
}

// rebuild turns a stored job back into its Work (jobs.Options.Rebuild).
func (s *Server) rebuild(kind string, request json.RawMessage) (jobs.Work, error) {
	switch kind {
	case "sd":
		var j sdJob
		if err := json.Unmarshal(request, &j); err != nil {
			return nil, fmt.Errorf("serve: stored sd request: %w", err)
		}
		return s.sdWork(j), nil
	case "rfnet":
		var j rfnetJob
		if err := json.Unmarshal(request, &j); err != nil {
			return nil, fmt.Errorf("serve: stored rfnet request: %w", err)
		}
		return s.rfnetWork(j), nil
	}
	return nil, fmt.Errorf("serve: stored job of unknown kind %q", kind)
}

// finished is jobs.Options.OnFinish: metrics, and the job's preview goes.
func (s *Server) finished(j jobs.Job) {
	s.metrics.job(j)
	s.previews.Delete(j.ID)
}

// sdWork makes the images of j, each as generate --method sd writes it: the
// PNG with its parameters text and its JSON sidecar.
func (s *Server) sdWork(j sdJob) jobs.Work {
	return func(ctx context.Context, dir string, rep jobs.Reporter) (any, error) {
		m := s.o.Model
		var res result
		for i := 0; i < j.Images; i++ {
			req := pipeline.Request{Prompt: j.Prompt, NegativePrompt: j.NegativePrompt, Steps: j.Steps, Guidance: j.Guidance,
				Scheduler: j.Scheduler, Width: j.Width, Height: j.Height, Seed: j.Seed + uint64(i), Context: ctx}
			if err := m.Validate(&req); err != nil {
				return nil, err
			}
			p := jobs.Progress{Stage: "text", Image: i, Images: j.Images, Steps: req.Steps}
			p.Fraction = float64(i) / float64(j.Images)
			rep.Progress(p)
			out, err := m.Generate(req, func(step, total int, latents *tensor.Tensor) {
				p.Stage, p.Step, p.Steps = "denoise", step, total
				p.Fraction = (float64(i) + float64(step)/float64(total)) / float64(j.Images)
				rep.Progress(p)
				s.keepPreview(dir, latents)
				if step == total {
					p.Stage = "decode"
					rep.Progress(p)
				}
			})
			if err != nil {
				return nil, err
			}
			for k, d := range out.Durations {
				rep.Timing(k, d.Seconds())
			}
			meta := pipeline.NewSidecar(m, req, out, s.o.Version, "", s.o.LoadTime)
			params := infotext.OfSidecar(meta, s.o.Checkpoint).Format()
			name := sdImage(i, j.Images)
			if err := pipeline.WriteImage(filepath.Join(dir, name), out.Image, meta, params); err != nil {
				return nil, err
			}
			res.Seeds, res.Images, res.Infotexts = append(res.Seeds, req.Seed), append(res.Images, name), append(res.Infotexts, params)
		}
		return res, nil
	}
}

// rfnetWork plans (when j has no plan) and runs RFNet into the job's folder,
// as generate does into its out-dir (rfnet.RunToDir): the same files.
func (s *Server) rfnetWork(j rfnetJob) jobs.Work {
	return func(ctx context.Context, dir string, rep jobs.Reporter) (any, error) {
		m := s.o.Model
		if j.SDXL && s.o.SDXL == nil { // a stored job, from a server started with --sdxl
			return nil, errors.New("serve: the job asks for the SDXL refiner, which this server does not load (serve --sdxl)")
		}
		plan := j.Plan
		if plan == nil {
			rep.Progress(jobs.Progress{Stage: "plan"})
			var err error
			if plan, err = s.o.Planner.Plan(ctx, j.Prompt); err != nil {
				return nil, err
			}
		}
		runs := len(plan.Objects) + 1 // the objects, then the overall scene
		perImage := runs * j.Config.Steps
		if j.SDXL {
			perImage += rfnet.SDXLStepsRun(j.Config) // the refiner's steps after the scene's
		}
		total := float64(j.Images * perImage)
		var res result
		for i := 0; i < j.Images; i++ {
			c := j.Config
			// Both seeds move by i, as generate's batch moves them.
			c.BgSeed, c.FgSeedStart = j.Config.BgSeed+uint64(i), j.Config.FgSeedStart+uint64(i)
			sub := rfnetDir(j.Images, c.BgSeed)
			o := rfnet.Options{Config: c, AllowV: s.o.AllowV, Context: ctx, SAM: s.o.SAM}
			n := len(plan.Objects)
			o.Progress = func(stage string, object, step, steps int) {
				p := jobs.Progress{Stage: stage, Objects: n, Image: i, Images: j.Images, Step: step, Steps: steps}
				done := n*c.Steps + step // the overall run's steps follow the objects'
				switch {
				case stage == "object" && c.BatchObjects:
					// The batch reports every object after each of its steps;
					// the job's stage is the batch ("objects", no object: a
					// stage event per object would flip at every report),
					// and its step is done when the last object reports.
					if object != n-1 {
						return
					}
					p.Stage, done = "objects", step*n
				case stage == "object":
					p.Object, done = &object, object*c.Steps+step
				}
				p.Fraction = float64(i*perImage+done) / total
				rep.Progress(p)
			}
			o.Latent = func(stage string, object, step int, latents *tensor.Tensor) {
				png := s.keepPreview(dir, latents)
				if j.PreviewEvery > 0 && step%j.PreviewEvery == 0 && png != nil {
					e := map[string]any{"stage": stage, "step": step, "png": base64.StdEncoding.EncodeToString(png)}
					if stage == "object" {
						e["object"] = object
					}
					rep.Event("preview", e)
				}
			}
			o.Trace = func(e rfnet.TraceEvent) {
				if e.Loss != nil && e.Iteration != nil {
					rep.Event("loss", map[string]any{"stage": e.Stage, "object": e.Object, "step": e.Step, "iteration": e.Iteration, "loss": e.Loss})
				}
			}
			out, err := rfnet.RunToDir(m, plan, o, rfnet.Output{Dir: filepath.Join(dir, sub), Version: s.o.Version, Checkpoint: s.o.Checkpoint})
			if err != nil {
				return nil, err
			}
			for k, d := range out.Durations {
				rep.Timing(k, d.Seconds())
			}
			image, params := "image.png", rfnet.Parameters(out, c, s.o.Checkpoint).Format()
			if j.SDXL {
				// As generate --sdxl: image.png stays, image-sdxl.png is the job's image.
				sd := *s.o.SDXL
				sd.Context = ctx
				sd.Progress = func(step, steps int, _ *tensor.Tensor) {
					rep.Progress(jobs.Progress{Stage: "sdxl refine", Image: i, Images: j.Images, Step: step, Steps: steps,
						Fraction: float64(i*perImage+runs*c.Steps+step) / total})
				}
				refined, err := rfnet.RefineToDir(sd, filepath.Join(dir, sub), out, c, "")
				if err != nil {
					return nil, err
				}
				rep.Timing("sdxl refine", refined.Record.Seconds["refine"])
				image, params = rfnet.SDXLImage, refined.Parameters
			}
			res.Seeds = append(res.Seeds, c.BgSeed)
			res.Images = append(res.Images, filepath.ToSlash(filepath.Join(sub, image)))
			res.Infotexts = append(res.Infotexts, params)
		}
		return res, nil
	}
}

// keepPreview makes the cheap preview of latents and keeps it as the
// running job's latest (A1111's current_image).
func (s *Server) keepPreview(dir string, latents *tensor.Tensor) []byte {
	png, err := pipeline.LatentPreview(latents)
	if err != nil {
		return nil // a latent that is not SD's 4 channels has no cheap preview
	}
	s.previews.Store(jobOfDir(dir), png)
	return png
}

// jobOfDir is the id of the job whose Work writes into dir: serve/jobs gives
// a Work the folder <data>/jobs/<id>/files (its store's layout), and neither
// a Work nor a Rebuild is told the id otherwise.
func jobOfDir(dir string) string { return filepath.Base(filepath.Dir(dir)) }
