package serve

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/serve/jobs"
)

// openAIRequest is POST /v1/images/generations: OpenAI's fields and the
// contract's extensions. Pointers tell a field left out from a zero.
type openAIRequest struct {
	Prompt         string   `json:"prompt"`
	N              *int     `json:"n"`
	Size           string   `json:"size"`
	ResponseFormat string   `json:"response_format"`
	NegativePrompt string   `json:"negative_prompt"`
	Steps          *int     `json:"steps"`
	Guidance       *float64 `json:"guidance"`
	Seed           *uint64  `json:"seed"`
	Scheduler      string   `json:"scheduler"`
	Method         string   `json:"method"`
	SDXL           *bool    `json:"sdxl"` // method rfnet: the SDXL refiner pass (nil: the server's default)
	// Accepted and not acted on.
	Model   string `json:"model"`
	User    string `json:"user"`
	Quality string `json:"quality"`
	Style   string `json:"style"`
}

type openAIImage struct {
	B64JSON string `json:"b64_json,omitempty"`
	URL     string `json:"url,omitempty"`
}

func (s *Server) openAIImages(w http.ResponseWriter, r *http.Request) error {
	var req openAIRequest
	if err := decode(w, r, s.o.Limits.MaxBody, &req); err != nil {
		return err
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	width, height, err := s.parseSize(req.Size)
	if err != nil {
		return err
	}
	steps, guidance := 50, 7.5
	if req.Steps != nil {
		steps = *req.Steps
	}
	if req.Guidance != nil {
		guidance = *req.Guidance
	}
	seed := randomSeed()
	if req.Seed != nil {
		seed = *req.Seed
	}
	format := req.ResponseFormat
	switch format {
	case "":
		format = "b64_json"
	case "b64_json", "url":
	default:
		return badField("response_format", "response_format %q: want b64_json or url", format)
	}
	var kind string
	var stored any
	var work jobs.Work
	switch req.Method {
	case "", "sd":
		if req.SDXL != nil {
			return badField("sdxl", "sdxl: applies to method rfnet (its SDXL refiner pass)")
		}
		scheduler := req.Scheduler
		if scheduler == "" {
			scheduler = "ddim"
		}
		j := sdJob{API: "openai", Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Steps: steps, Guidance: guidance,
			Scheduler: scheduler, Width: width, Height: height, Seed: seed, Images: n}
		if err := s.checkSD(&j, openAIFields); err != nil {
			return err
		}
		kind, stored, work = "sd", j, s.sdWork(j)
	case "rfnet":
		if req.NegativePrompt != "" {
			return badField("negative_prompt", "negative_prompt: applies to method sd (RFNet takes the plan's negative prompt)")
		}
		if err := s.o.Limits.checkPrompt("prompt", req.Prompt, true); err != nil {
			return err
		}
		if err := s.o.Limits.checkImages("n", n); err != nil {
			return err
		}
		c := rfnet.Default().WithSeed(seed)
		c.Steps, c.Guidance, c.Width, c.Height = steps, guidance, width, height
		if req.Scheduler != "" {
			c.Scheduler = req.Scheduler
		}
		names := map[string]string{"num_inference_steps": "steps", "guidance_scale": "guidance", "width": "size", "height": "size", "scheduler": "scheduler"}
		if err := s.checkRFNet(c, func(key string) string {
			if f, ok := names[key]; ok {
				return f
			}
			return "" // the defaults themselves: no field of the request
		}); err != nil {
			return err
		}
		if err := checkSeeds("n", seed, n); err != nil {
			return err
		}
		sdxl, err := s.sdxlOf(req.SDXL, c)
		if err != nil {
			return err
		}
		j := rfnetJob{API: "openai", Prompt: req.Prompt, Config: c, Images: n, SDXL: sdxl}
		kind, stored, work = "rfnet", j, s.rfnetWork(j)
	default:
		return badField("method", "method %q: want sd or rfnet", req.Method)
	}
	job, err := s.runSync(r, kind, stored, work)
	if err != nil {
		return err
	}
	res, err := resultOf(job)
	if err != nil {
		return err
	}
	answer := struct {
		Created int64         `json:"created"`
		Data    []openAIImage `json:"data"`
	}{Created: time.Now().Unix()}
	for _, name := range res.Images {
		if format == "url" {
			answer.Data = append(answer.Data, openAIImage{URL: s.publicURL(r) + "/v1/jobs/" + job.ID + "/files/" + name})
			continue
		}
		b64, err := s.fileBase64(job.ID, name)
		if err != nil {
			return err
		}
		answer.Data = append(answer.Data, openAIImage{B64JSON: b64})
	}
	writeJSON(w, http.StatusOK, answer)
	return nil
}

// parseSize reads OpenAI's "WxH"; "" is the model's native size.
func (s *Server) parseSize(size string) (int, int, error) {
	v := s.o.Model.Variant
	if size == "" {
		return v.Width, v.Height, nil
	}
	ws, hs, ok := strings.Cut(size, "x")
	w, werr := strconv.Atoi(ws)
	h, herr := strconv.Atoi(hs)
	if !ok || werr != nil || herr != nil {
		return 0, 0, badField("size", "size %q: want \"WxH\", such as \"512x512\"", size)
	}
	l := s.o.Limits
	if err := checkSide("size", w, l.MaxWidth, "--max-width"); err != nil {
		return 0, 0, badField("size", "size %q: the width: want a multiple of 8 from 8 to %d (--max-width)", size, l.MaxWidth)
	}
	if err := checkSide("size", h, l.MaxHeight, "--max-height"); err != nil {
		return 0, 0, badField("size", "size %q: the height: want a multiple of 8 from 8 to %d (--max-height)", size, l.MaxHeight)
	}
	return w, h, nil
}

// publicURL is --public-url, else the base the request came to.
func (s *Server) publicURL(r *http.Request) string {
	if s.o.PublicURL != "" {
		return strings.TrimSuffix(s.o.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// fileBase64 is a finished job's file, base64-encoded.
func (s *Server) fileBase64(id, name string) (string, error) {
	path, err := s.queue.File(id, name)
	if err != nil {
		return "", fmt.Errorf("serve: job %s: %s: %w", id, name, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("serve: job %s: %w", id, err)
	}
	return base64.StdEncoding.EncodeToString(data), nil
}
