package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/serve/jobs"
)

// txt2imgRequest is AUTOMATIC1111's POST /sdapi/v1/txt2img, the fields this
// server acts on, then those it accepts at A1111's defaults only.
type txt2imgRequest struct {
	Prompt         string   `json:"prompt"`
	NegativePrompt string   `json:"negative_prompt"`
	Steps          *int     `json:"steps"`
	CFGScale       *float64 `json:"cfg_scale"`
	Width          *int     `json:"width"`
	Height         *int     `json:"height"`
	Seed           *int64   `json:"seed"`
	SamplerName    string   `json:"sampler_name"`
	SamplerIndex   string   `json:"sampler_index"` // the old name of sampler_name
	BatchSize      *int     `json:"batch_size"`
	NIter          *int     `json:"n_iter"`
	// Accepted and not acted on, at their A1111 defaults.
	SendImages        *bool            `json:"send_images"`
	SaveImages        *bool            `json:"save_images"`
	DoNotSaveSamples  *bool            `json:"do_not_save_samples"`
	DoNotSaveGrid     *bool            `json:"do_not_save_grid"`
	Styles            []string         `json:"styles"`
	OverrideSettings  map[string]any   `json:"override_settings"`
	RestoreFaces      *bool            `json:"restore_faces"`
	Tiling            *bool            `json:"tiling"`
	EnableHR          *bool            `json:"enable_hr"`
	Subseed           *int64           `json:"subseed"`
	SubseedStrength   *float64         `json:"subseed_strength"`
	DenoisingStrength *json.RawMessage `json:"denoising_strength"` // only read with enable_hr
}

// txt2imgParameters is the answer's "parameters": the request with its
// defaults filled.
type txt2imgParameters struct {
	Prompt         string  `json:"prompt"`
	NegativePrompt string  `json:"negative_prompt"`
	Steps          int     `json:"steps"`
	CFGScale       float64 `json:"cfg_scale"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	Seed           int64   `json:"seed"`
	SamplerName    string  `json:"sampler_name"`
	BatchSize      int     `json:"batch_size"`
	NIter          int     `json:"n_iter"`
}

// unsupported refuses the A1111 fields set to what this server does not do.
func (r *txt2imgRequest) unsupported() error {
	for _, f := range []struct {
		name string
		set  *bool
		want bool
	}{
		{"send_images", r.SendImages, true}, {"save_images", r.SaveImages, false},
		{"do_not_save_samples", r.DoNotSaveSamples, false}, {"do_not_save_grid", r.DoNotSaveGrid, false},
		{"restore_faces", r.RestoreFaces, false}, {"tiling", r.Tiling, false}, {"enable_hr", r.EnableHR, false},
	} {
		if f.set != nil && *f.set != f.want {
			return badField(f.name, "%s %v: not supported (only %v)", f.name, *f.set, f.want)
		}
	}
	switch {
	case len(r.Styles) > 0:
		return badField("styles", "styles: not supported (only [])")
	case len(r.OverrideSettings) > 0:
		return badField("override_settings", "override_settings: not supported (only {})")
	case r.Subseed != nil && *r.Subseed != -1:
		return badField("subseed", "subseed %d: not supported (only -1)", *r.Subseed)
	case r.SubseedStrength != nil && *r.SubseedStrength != 0:
		return badField("subseed_strength", "subseed_strength %v: not supported (only 0)", *r.SubseedStrength)
	}
	return nil
}

// schedulerOfSampler is the scheduler whose A1111 label (or own name) is
// label, case aside.
func schedulerOfSampler(label string) (string, bool) {
	for _, n := range sched.Names() {
		if a, _, _ := sched.A1111Names(n); strings.EqualFold(a, label) || strings.EqualFold(n, label) {
			return n, true
		}
	}
	return "", false
}

func (s *Server) txt2img(w http.ResponseWriter, r *http.Request) error {
	var req txt2imgRequest
	if err := decode(w, r, s.o.Limits.MaxBody, &req); err != nil {
		return err
	}
	if err := req.unsupported(); err != nil {
		return err
	}
	p := txt2imgParameters{Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Steps: 20, CFGScale: 7,
		Width: s.o.Model.Variant.Width, Height: s.o.Model.Variant.Height, Seed: -1, SamplerName: "DDIM", BatchSize: 1, NIter: 1}
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.Steps, req.Steps)
	set(&p.Width, req.Width)
	set(&p.Height, req.Height)
	set(&p.BatchSize, req.BatchSize)
	set(&p.NIter, req.NIter)
	if req.CFGScale != nil {
		p.CFGScale = *req.CFGScale
	}
	if req.Seed != nil {
		p.Seed = *req.Seed
	}
	switch {
	case req.SamplerName != "" && req.SamplerIndex != "" && !strings.EqualFold(req.SamplerName, req.SamplerIndex):
		return badField("sampler_index", "sampler_index %q differs from sampler_name %q (its new name): send one", req.SamplerIndex, req.SamplerName)
	case req.SamplerName != "":
		p.SamplerName = req.SamplerName
	case req.SamplerIndex != "":
		p.SamplerName = req.SamplerIndex
	}
	scheduler, ok := schedulerOfSampler(p.SamplerName)
	if !ok {
		return badField("sampler_name", "sampler_name %q: want one of %s (GET /sdapi/v1/samplers)", p.SamplerName, strings.Join(samplerLabels(), ", "))
	}
	if p.NIter < 1 || p.NIter > s.o.Limits.MaxImages {
		return badField("n_iter", "n_iter %d: want 1 to %d", p.NIter, s.o.Limits.MaxImages)
	}
	if p.BatchSize < 1 || p.BatchSize*p.NIter > s.o.Limits.MaxImages {
		return badField("batch_size", "batch_size %d × n_iter %d: want 1 to %d images (--max-images)", p.BatchSize, p.NIter, s.o.Limits.MaxImages)
	}
	var seed uint64
	switch {
	case p.Seed == -1:
		seed = randomSeed()
	case p.Seed < 0:
		return badField("seed", "seed %d: want -1 (random) or 0 or more", p.Seed)
	default:
		seed = uint64(p.Seed)
	}
	p.Seed = int64(min(seed, math.MaxInt64))
	j := sdJob{API: "a1111", Prompt: p.Prompt, NegativePrompt: p.NegativePrompt, Steps: p.Steps, Guidance: p.CFGScale,
		Scheduler: scheduler, Width: p.Width, Height: p.Height, Seed: seed, Images: p.BatchSize * p.NIter}
	if err := s.checkSD(&j, a1111Fields); err != nil {
		return err
	}
	job, err := s.runSync(r, "sd", j, s.sdWork(j))
	if err != nil {
		return err
	}
	res, err := resultOf(job)
	if err != nil {
		return err
	}
	answer := struct {
		Images     []string          `json:"images"`
		Parameters txt2imgParameters `json:"parameters"`
		Info       string            `json:"info"`
	}{Parameters: p}
	for _, name := range res.Images {
		b64, err := s.fileBase64(job.ID, name)
		if err != nil {
			return err
		}
		answer.Images = append(answer.Images, b64)
	}
	info, err := s.a1111Info(p, j, res, job)
	if err != nil {
		return err
	}
	answer.Info = info
	writeJSON(w, http.StatusOK, answer)
	return nil
}

// a1111Info is txt2img's "info": a JSON string, as A1111 answers it, whose
// infotexts are the PNGs' parameters texts.
func (s *Server) a1111Info(p txt2imgParameters, j sdJob, res result, job jobs.Job) (string, error) {
	n := len(res.Seeds)
	info := map[string]any{
		"prompt": p.Prompt, "all_prompts": repeat(p.Prompt, n), "negative_prompt": p.NegativePrompt,
		"all_negative_prompts": repeat(p.NegativePrompt, n), "seed": res.Seeds[0], "all_seeds": res.Seeds,
		"width": j.Width, "height": j.Height, "sampler_name": p.SamplerName, "cfg_scale": j.Guidance, "steps": j.Steps,
		"batch_size": p.BatchSize, "n_iter": p.NIter, "sd_model_name": s.o.Checkpoint.Name, "sd_model_hash": s.o.Checkpoint.Hash,
		"job_timestamp": job.Created.UTC().Format("20060102150405"), "infotexts": res.Infotexts,
	}
	data, err := json.Marshal(info)
	return string(data), err
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// a1111Progress is GET /sdapi/v1/progress for the oldest running job.
func (s *Server) a1111Progress(w http.ResponseWriter, r *http.Request) error {
	type state struct {
		Job           string `json:"job"`
		JobCount      int    `json:"job_count"`
		SamplingStep  int    `json:"sampling_step"`
		SamplingSteps int    `json:"sampling_steps"`
		Interrupted   bool   `json:"interrupted"`
	}
	answer := struct {
		Progress     float64 `json:"progress"`
		ETARelative  float64 `json:"eta_relative"`
		State        state   `json:"state"`
		CurrentImage *string `json:"current_image"`
		TextInfo     *string `json:"textinfo"`
	}{}
	st := s.queue.Stats()
	answer.State.JobCount = st.Queued + st.Running
	if j, ok := oldestRunning(s.queue.List()); ok {
		answer.Progress = j.Progress.Fraction
		answer.State.Job, answer.State.SamplingStep, answer.State.SamplingSteps = j.ID, j.Progress.Step, j.Progress.Steps
		if j.Started != nil && j.Progress.Fraction > 0 {
			elapsed := time.Since(*j.Started).Seconds()
			answer.ETARelative = elapsed/j.Progress.Fraction - elapsed
		}
		if png, ok := s.previews.Load(j.ID); ok {
			b64 := base64Of(png.([]byte))
			answer.CurrentImage = &b64
		}
	}
	writeJSON(w, http.StatusOK, answer)
	return nil
}

// oldestRunning is the running job that started first.
func oldestRunning(list []jobs.Job) (jobs.Job, bool) {
	var best jobs.Job
	found := false
	for _, j := range list {
		if j.State == jobs.Running && j.Started != nil && (!found || j.Started.Before(*best.Started)) {
			best, found = j, true
		}
	}
	return best, found
}

// a1111Interrupt cancels the jobs of the A1111 API that run now.
func (s *Server) a1111Interrupt(w http.ResponseWriter, r *http.Request) error {
	for _, j := range s.queue.List() {
		if j.State != jobs.Running || j.Kind != "sd" {
			continue
		}
		var req sdJob
		if json.Unmarshal(j.Request, &req) == nil && req.API == "a1111" {
			s.queue.Cancel(j.ID)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

func samplerLabels() []string {
	var out []string
	for _, n := range sched.Names() {
		a, _, _ := sched.A1111Names(n)
		out = append(out, a)
	}
	return out
}

// a1111Samplers lists the schedulers under A1111's labels.
func (s *Server) a1111Samplers(w http.ResponseWriter, r *http.Request) error {
	type sampler struct {
		Name    string            `json:"name"`
		Aliases []string          `json:"aliases"`
		Options map[string]string `json:"options"`
	}
	var out []sampler
	for _, n := range sched.Names() {
		a, _, _ := sched.A1111Names(n)
		out = append(out, sampler{Name: a, Aliases: []string{n}, Options: map[string]string{}})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// a1111Models lists the one loaded model as A1111 lists checkpoints.
func (s *Server) a1111Models(w http.ResponseWriter, r *http.Request) error {
	c := s.o.Checkpoint
	writeJSON(w, http.StatusOK, []map[string]any{{
		"title": fmt.Sprintf("%s [%s]", filepath.Base(s.o.Model.Path), c.Hash), "model_name": c.Name, "hash": c.Hash,
		"sha256": c.SHA256, "filename": s.o.Model.Path, "config": nil,
	}})
	return nil
}
