package infotext

import (
	"strconv"
	"strings"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/sched"
)

// Params are one image's generation parameters, as its parameters text
// gives them. An empty string, a nil Seed or an empty list leaves its key out.
type Params struct {
	Prompt         string
	NegativePrompt string
	Steps          int
	Scheduler      string // a name sched.New accepts, written as A1111's sampler and schedule type
	CFGScale       float64
	Seed           *uint64 // nil when the noise did not come from a seed (--init-latents)
	Width, Height  int
	Model          Checkpoint
	// DenoisingStrength is an img2img run's strength (0 leaves it out).
	DenoisingStrength float64
	// AestheticScore and NegativeAestheticScore are the SDXL refiner's
	// conditioning (nil leaves them out).
	AestheticScore, NegativeAestheticScore *float64
	// RFNet's keys, after A1111's.
	Method        string   // "sd" or "rfnet"
	InitLatents   string   // the file the initial latents came from
	OverallPrompt string   // RFNet's prompt of the whole scene
	Objects       []string // RFNet's prompts of the objects, in the order it generated them
	ObjectSeeds   []uint64 // the seeds of the objects' own noise, in the same order
}

// Fields are the pairs of p's parameters line, in A1111's order
// (processing.py's create_infotext), then RFNet's. Lists are JSON arrays.
func (p Params) Fields() Fields {
	sampler, scheduleType, ok := sched.A1111Names(p.Scheduler)
	if !ok {
		sampler = p.Scheduler
	}
	var f Fields
	add := func(key, value string) {
		if value != "" {
			f = append(f, Field{key, value})
		}
	}
	add("Steps", strconv.Itoa(p.Steps))
	add("Sampler", sampler)
	add("Schedule type", scheduleType)
	add("CFG scale", strconv.FormatFloat(p.CFGScale, 'g', -1, 64))
	if p.Seed != nil {
		add("Seed", strconv.FormatUint(*p.Seed, 10))
	}
	add("Size", strconv.Itoa(p.Width)+"x"+strconv.Itoa(p.Height))
	add("Model hash", p.Model.Hash)
	add("Model", p.Model.Name)
	if p.DenoisingStrength != 0 {
		add("Denoising strength", strconv.FormatFloat(p.DenoisingStrength, 'g', -1, 64))
	}
	for _, a := range []struct {
		key string
		v   *float64
	}{{"Aesthetic score", p.AestheticScore}, {"Negative aesthetic score", p.NegativeAestheticScore}} {
		if a.v != nil {
			add(a.key, strconv.FormatFloat(*a.v, 'g', -1, 64))
		}
	}
	add("Method", p.Method)
	add("Init latents", p.InitLatents)
	add("Overall prompt", p.OverallPrompt)
	if len(p.Objects) > 0 {
		quoted := make([]string, len(p.Objects))
		for i, o := range p.Objects {
			quoted[i] = jsonString(o)
		}
		add("Objects", jsonList(quoted))
	}
	if len(p.ObjectSeeds) > 0 {
		seeds := make([]string, len(p.ObjectSeeds))
		for i, s := range p.ObjectSeeds {
			seeds[i] = strconv.FormatUint(s, 10)
		}
		add("Object seeds", jsonList(seeds))
	}
	return f
}

// jsonList is Python's json.dumps of a list whose items are already JSON:
// ", " between them.
func jsonList(items []string) string { return "[" + strings.Join(items, ", ") + "]" }

// Format is p's parameters text.
func (p Params) Format() string { return format(p.Prompt, p.NegativePrompt, p.Fields()) }

// format is A1111's create_infotext: the prompt, "Negative prompt: …" on a
// line of its own when there is one, then the pairs on one line joined by
// ", ", the whole stripped of surrounding white space.
func format(prompt, negative string, fields Fields) string {
	var b strings.Builder
	b.WriteString(prompt)
	if negative != "" {
		b.WriteString("\nNegative prompt: " + negative)
	}
	b.WriteByte('\n')
	for i, f := range fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Key + ": " + quote(f.Value))
	}
	return pyStrip(b.String())
}

// OfSidecar are the parameters of a plain-SD image as its sidecar records
// them, naming the model as ckpt: the one source of both files' contents.
func OfSidecar(s pipeline.Sidecar, ckpt Checkpoint) Params {
	return Params{Prompt: s.Prompt, NegativePrompt: s.NegativePrompt, Steps: s.Steps, Scheduler: s.Scheduler,
		CFGScale: s.Guidance, Seed: s.Seed, Width: s.Width, Height: s.Height, Model: ckpt, Method: s.Method,
		InitLatents: s.InitLatents}
}

// OfRefineSidecar are the parameters of a refined image as its record s
// gives them (refine's sidecar, RFNet's run.json), naming the refiner as ckpt.
func OfRefineSidecar(s pipeline.RefineSidecar, ckpt Checkpoint) Params {
	seed := s.Seed
	aesthetic, negative := s.AestheticScore, s.NegativeAestheticScore
	return Params{Prompt: s.Prompt, NegativePrompt: s.NegativePrompt, Steps: s.Steps, Scheduler: s.Scheduler,
		CFGScale: s.Guidance, Seed: &seed, Width: s.Width, Height: s.Height, Model: ckpt, Method: s.Method,
		DenoisingStrength: s.Strength, AestheticScore: &aesthetic, NegativeAestheticScore: &negative}
}
