package serve

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// planRequest is POST /v1/rfnet/plan.
type planRequest struct {
	Prompt     string `json:"prompt"`
	Planner    string `json:"planner"` // "llm" or "offline"; "": the server's planner
	MaxObjects *int   `json:"max_objects"`
}

func (s *Server) rfnetPlan(w http.ResponseWriter, r *http.Request) error {
	var req planRequest
	if err := decode(w, r, s.o.Limits.MaxBody, &req); err != nil {
		return err
	}
	if err := s.o.Limits.checkPrompt("prompt", req.Prompt, true); err != nil {
		return err
	}
	n := s.o.Limits.MaxObjects
	if req.MaxObjects != nil {
		if *req.MaxObjects < 1 || *req.MaxObjects > n {
			return badField("max_objects", "max_objects %d: want 1 to %d (--max-objects)", *req.MaxObjects, n)
		}
		n = *req.MaxObjects
	}
	var planner llm.Planner
	switch req.Planner {
	case "", "llm":
		planner = s.o.Planner
	case "offline":
		planner = llm.Offline{MaxObjects: n}
	default:
		return badField("planner", "planner %q: want llm or offline", req.Planner)
	}
	plan, err := planner.Plan(r.Context(), req.Prompt)
	if err != nil {
		return newError(http.StatusInternalServerError, "", "%v", err)
	}
	plan.Cap(n)
	data, err := plan.Marshal()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
	return nil
}

// jobRequest is POST /v1/rfnet/jobs.
type jobRequest struct {
	Prompt         string          `json:"prompt"`
	Plan           json.RawMessage `json:"plan"` // decoded apart (decodeField), to name unknown keys inside it
	Settings       json.RawMessage `json:"settings"`
	Seed           *uint64         `json:"seed"`
	Steps          *int            `json:"steps"`
	Guidance       *float64        `json:"guidance"`
	Width          *int            `json:"width"`
	Height         *int            `json:"height"`
	PreviewEvery   int             `json:"preview_every"`
	TimeoutSeconds *float64        `json:"timeout_seconds"`
	// SDXL asks for the SDXL refiner pass (nil: the server's default, on
	// when it loads the refiner).
	SDXL *bool `json:"sdxl"`
}

func (s *Server) rfnetSubmit(w http.ResponseWriter, r *http.Request) error {
	var req jobRequest
	if err := decode(w, r, s.o.Limits.MaxBody, &req); err != nil {
		return err
	}
	j, err := s.rfnetJobOf(req)
	if err != nil {
		return err
	}
	timeout, err := s.jobTimeout(req.TimeoutSeconds)
	if err != nil {
		return err
	}
	job, err := s.submit("rfnet", j, timeout, s.rfnetWork(j))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/jobs/"+job.ID)
	writeJSON(w, http.StatusAccepted, job)
	return nil
}

// rfnetJobOf checks a job request field by field: the plan as --plan files
// are checked, the settings as --rfnet-config files are, the shorthands over
// them.
func (s *Server) rfnetJobOf(req jobRequest) (rfnetJob, error) {
	l := s.o.Limits
	j := rfnetJob{API: "rfnet", Prompt: req.Prompt, PreviewEvery: req.PreviewEvery, Images: 1}
	hasPlan := len(req.Plan) > 0 && string(req.Plan) != "null"
	if err := l.checkPrompt("prompt", req.Prompt, !hasPlan); err != nil {
		return j, err
	}
	if hasPlan {
		var plan llm.Plan
		if err := decodeField("plan", req.Plan, &plan); err != nil {
			return j, err
		}
		p, err := s.checkPlan(plan, req.Prompt)
		if err != nil {
			return j, err
		}
		j.Plan = p
	}
	if req.PreviewEvery < 0 {
		return j, badField("preview_every", "preview_every %d: want 0 (no previews) or more", req.PreviewEvery)
	}
	c := rfnet.Default()
	if len(req.Settings) > 0 && string(req.Settings) != "null" {
		var err error
		if c, err = rfnet.ParseConfig(req.Settings); err != nil {
			return j, settingError(err, func(key string) string { return "settings." + key })
		}
	}
	shorthand := map[string]string{}
	if req.Steps != nil {
		c.Steps, shorthand["num_inference_steps"] = *req.Steps, "steps"
	}
	if req.Guidance != nil {
		c.Guidance, shorthand["guidance_scale"] = *req.Guidance, "guidance"
	}
	if req.Width != nil {
		c.Width, shorthand["width"] = *req.Width, "width"
	}
	if req.Height != nil {
		c.Height, shorthand["height"] = *req.Height, "height"
	}
	if req.Seed != nil {
		c = c.WithSeed(*req.Seed)
	}
	if err := s.checkRFNet(c, func(key string) string {
		if f, ok := shorthand[key]; ok {
			return f
		}
		return "settings." + key
	}); err != nil {
		return j, err
	}
	if c.SAMBox && s.o.SAM == nil {
		// Without SAM the masks are always §8.2's: a request for SAM's box
		// mode would be accepted and not honoured.
		return j, badField("settings.sam_box", "settings.sam_box: this server loads no SAM model (masks come from the attention, §8.2; serve --sam loads one): leave it false")
	}
	sdxl, err := s.sdxlOf(req.SDXL, c)
	if err != nil {
		return j, err
	}
	j.Config, j.SDXL = c, sdxl
	return j, nil
}

// sdxlOf is whether an RFNet job under c refines its images with the
// server's SDXL refiner: asked (nil: the server's default, on when it loads
// the refiner), refused where it cannot be honoured.
func (s *Server) sdxlOf(asked *bool, c rfnet.Config) (bool, error) {
	on := s.o.SDXL != nil
	if asked != nil {
		if *asked && s.o.SDXL == nil {
			return false, badField("sdxl", "sdxl: this server loads no SDXL refiner (serve --sdxl loads one): leave it out or false")
		}
		on = *asked
	}
	if on && rfnet.SDXLStepsRun(c) < 1 {
		// Refused now rather than after the whole scene.
		return false, badField("settings.sdxl_step_ratio", "settings.sdxl_step_ratio %g runs none of the refiner's %d steps: raise it, or send \"sdxl\": false", c.SDXLStepRatio, pipeline.DefaultRefineSteps)
	}
	return on, nil
}

// checkPlan checks a request's plan as llm checks plan files (Plan.Check),
// naming the object at fault, and against --max-objects.
func (s *Server) checkPlan(p llm.Plan, prompt string) (*llm.Plan, error) {
	if p.Version != 0 && p.Version != llm.PlanVersion {
		return nil, badField("plan.version", "plan.version %d: this server reads version %d", p.Version, llm.PlanVersion)
	}
	p.Version = llm.PlanVersion
	if n := s.o.Limits.MaxObjects; len(p.Objects) > n {
		return nil, badField("plan.objects", "plan.objects: %d objects, want at most %d (--max-objects)", len(p.Objects), n)
	}
	if err := p.Check(); err != nil {
		param := "plan.objects"
		for i := range p.Objects {
			one := llm.Plan{Objects: p.Objects[i : i+1]}
			if one.Check() != nil {
				param = fmt.Sprintf("plan.objects[%d]", i)
				break
			}
		}
		return nil, badField(param, "plan: %v", err)
	}
	if err := s.o.Limits.checkPrompt("plan.prompt", p.Prompt, false); err != nil {
		return nil, err
	}
	if p.Prompt == "" {
		p.Prompt = prompt // a layout need not carry its caption
	}
	// Where the plan came from is the request, whatever it says (generate
	// says "file" for a --plan).
	p.Source, p.Notes = &llm.Source{Planner: "request"}, nil
	return &p, nil
}
