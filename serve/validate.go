package serve

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/sched"
)

// sdFields name an API's fields for the checks of checkSD: OpenAI says
// "size" for width and height, "n" for the images; A1111 says "cfg_scale",
// "sampler_name" and "batch_size".
type sdFields struct {
	width, height, guidance, scheduler, images string
}

var (
	openAIFields = sdFields{width: "size", height: "size", guidance: "guidance", scheduler: "scheduler", images: "n"}
	a1111Fields  = sdFields{width: "width", height: "height", guidance: "cfg_scale", scheduler: "sampler_name", images: "batch_size"}
)

// checkPrompt checks a prompt or negative prompt against --max-prompt.
func (l Limits) checkPrompt(name, v string, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return badField(name, "%s: required", name)
	case len(v) > l.MaxPrompt:
		return badField(name, "%s: %d bytes, want at most %d (--max-prompt)", name, len(v), l.MaxPrompt)
	}
	return nil
}

// checkSide is pipeline.CheckSide within --max-width or --max-height.
func checkSide(name string, v, limit int, flag string) error {
	if err := pipeline.CheckSide(name, v); err != nil || v > limit {
		return badField(name, "%s %d: want a multiple of 8 from 8 to %d (%s)", name, v, limit, flag)
	}
	return nil
}

func (l Limits) checkSteps(name string, v int) error {
	if v < 1 || v > l.MaxSteps {
		return badField(name, "%s %d: want 1 to %d (--max-steps)", name, v, l.MaxSteps)
	}
	return nil
}

func (l Limits) checkGuidance(name string, v float64) error {
	if math.IsNaN(v) || v < 0 || v > l.MaxGuidance {
		return badField(name, "%s %v: want a number from 0 to %g", name, v, l.MaxGuidance)
	}
	return nil
}

func (l Limits) checkImages(name string, v int) error {
	if v < 1 || v > l.MaxImages {
		return badField(name, "%s %d: want 1 to %d images (--max-images)", name, v, l.MaxImages)
	}
	return nil
}

// checkSD checks a plain-SD job field by field, names as f gives them, then
// against the model (the scheduler's name, whether the size fits the
// device) through pipeline's own Validate.
func (s *Server) checkSD(j *sdJob, f sdFields) error {
	l := s.o.Limits
	for _, err := range []error{
		l.checkPrompt("prompt", j.Prompt, true),
		l.checkPrompt("negative_prompt", j.NegativePrompt, false),
		l.checkSteps("steps", j.Steps),
		l.checkGuidance(f.guidance, j.Guidance),
		checkSide(f.width, j.Width, l.MaxWidth, "--max-width"),
		checkSide(f.height, j.Height, l.MaxHeight, "--max-height"),
		l.checkImages(f.images, j.Images),
		checkSeeds(f.images, j.Seed, j.Images),
	} {
		if err != nil {
			return err
		}
	}
	if _, err := sched.New(j.Scheduler, s.o.Model.Variant.Sched, j.Steps); err != nil {
		return badField(f.scheduler, "%s %q: %v", f.scheduler, j.Scheduler, err)
	}
	req := pipeline.Request{Prompt: j.Prompt, Steps: j.Steps, Guidance: j.Guidance, Scheduler: j.Scheduler, Width: j.Width, Height: j.Height}
	if err := s.o.Model.Validate(&req); err != nil {
		return badField(f.width, "%v", err) // what is left is the size: the memory check
	}
	return nil
}

// checkSeeds refuses a first seed whose batch would run past the largest
// seed (image i gets seed + i).
func checkSeeds(images string, seed uint64, n int) error {
	if n > 1 && seed > math.MaxUint64-uint64(n-1) {
		return badField("seed", "seed %d: %s %d would run the seeds past %d", seed, images, n, uint64(math.MaxUint64))
	}
	return nil
}

// randomSeed is the seed of a request that names none: below 2^32, as
// A1111's random seeds are, so that every tool reads it back.
func randomSeed() uint64 { return uint64(rand.Uint32()) }

// checkRFNet checks an RFNet configuration against the limits and the
// model: rfnet.Config.Validate's rules, then rfnet.Validate's (scheduler,
// size, memory) and the prediction type. param names the field a key came
// from (a shorthand such as "steps", else "settings.<key>").
func (s *Server) checkRFNet(c rfnet.Config, param func(key string) string) error {
	l := s.o.Limits
	for _, err := range []error{
		l.checkSteps(param("num_inference_steps"), c.Steps),
		l.checkGuidance(param("guidance_scale"), c.Guidance),
		checkSide(param("width"), c.Width, l.MaxWidth, "--max-width"),
		checkSide(param("height"), c.Height, l.MaxHeight, "--max-height"),
	} {
		if err != nil {
			return err
		}
	}
	if err := c.Validate(); err != nil {
		return settingError(err, param)
	}
	if _, err := sched.New(c.Scheduler, s.o.Model.Variant.Sched, c.Steps); err != nil {
		return badField(param("scheduler"), "%s %q: %v", param("scheduler"), c.Scheduler, err)
	}
	if err := rfnet.Validate(s.o.Model, c); err != nil {
		return badField(param("width"), "%v", err) // what is left is the size: the memory check
	}
	if !s.o.AllowV {
		if err := rfnet.CheckPrediction(s.o.Model); err != nil {
			return badField("", "%v (the server runs with --allow-v to run it anyway)", err)
		}
	}
	return nil
}

// settingError is an error of the rfnet configuration as a 400 naming its
// key's field.
func settingError(err error, param func(key string) string) error {
	var ke *rfnet.KeyError
	if errors.As(err, &ke) {
		return badField(param(ke.Key), "%s", strings.TrimPrefix(err.Error(), "rfnet: config: "))
	}
	return badField("settings", "settings: %s", strings.TrimPrefix(err.Error(), "rfnet: config: "))
}
