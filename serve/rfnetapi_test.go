package serve

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/sam"
	"github.com/rfnet/rfnet-native/tensor"
)

// An RFNet job planned by the (fake) LLM: 202 with its Location, events in
// order (queued, running, the stages and steps, losses, previews, then
// succeeded), a replay after Last-Event-ID, and its files.
func TestRFNetJob(t *testing.T) {
	ts := newTestServer(t, Options{Planner: fakePlanner(t, fakePlan)})
	code, body, _ := ts.do("POST", "/v1/rfnet/plan", map[string]any{"prompt": "a mouse hunting a lion"})
	plan := decodeAs[struct {
		Objects []struct {
			Name string `json:"name"`
		} `json:"objects"`
	}](t, body)
	if code != http.StatusOK || len(plan.Objects) != 2 {
		t.Fatalf("plan: %d %s", code, body)
	}
	code, body, h := ts.do("POST", "/v1/rfnet/jobs", map[string]any{"prompt": "a mouse hunting a lion", "steps": 4,
		"width": 128, "height": 128, "seed": 3, "preview_every": 2})
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", code, body)
	}
	job := decodeAs[struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}](t, body)
	if h.Get("Location") != "/v1/jobs/"+job.ID || job.State != "queued" {
		t.Fatalf("submit: Location %q, %s", h.Get("Location"), body)
	}
	events, _ := ts.events(job.ID, "")
	var types, states, stages []string
	fraction, batchSteps := 0.0, 0
	for i, e := range events {
		if e.ID != strconv.Itoa(i+1) {
			t.Fatalf("event %d has id %s", i+1, e.ID)
		}
		types = append(types, e.Type)
		var d map[string]any
		if err := json.Unmarshal([]byte(e.Data), &d); err != nil {
			t.Fatalf("event %s: %v", e.Data, err)
		}
		switch e.Type {
		case "state":
			states = append(states, d["state"].(string))
		case "stage":
			stage := d["stage"].(string)
			if o, ok := d["object"]; ok {
				stage += strconv.Itoa(int(o.(float64)))
			}
			stages = append(stages, stage)
		case "step":
			// The batch's steps report once each (not once per object) and
			// the fraction never goes back.
			if f := d["fraction"].(float64); f < fraction || f > 1 {
				t.Errorf("fraction %v after %v", f, fraction)
			} else {
				fraction = f
			}
			if d["stage"] == "objects" {
				batchSteps++
			}
		case "preview":
			if d["png"] == "" || int(d["step"].(float64))%2 != 0 {
				t.Errorf("preview %s", e.Data)
			}
		}
	}
	if !slices.Equal(states, []string{"queued", "running", "succeeded"}) || types[0] != "state" || types[len(types)-1] != "state" {
		t.Fatalf("states %v, types %v", states, types)
	}
	// The plan's objects run as one batch (batch_objects, the default), then the scene.
	if !slices.Equal(stages, []string{"plan", "objects", "overall"}) || batchSteps != 4 {
		t.Errorf("stages %v, %d steps of the batch, want 4", stages, batchSteps)
	}
	for _, typ := range []string{"step", "loss", "preview"} {
		if !slices.Contains(types, typ) {
			t.Errorf("no %s event in %v", typ, types)
		}
	}
	// A reconnecting client gets the events after the last it saw.
	replay, _ := ts.events(job.ID, "3")
	if len(replay) != len(events)-3 || replay[0].ID != "4" || replay[0] != events[3] {
		t.Errorf("replay after 3: %d events from %v, want %d", len(replay), replay[0], len(events)-3)
	}
	code, body, _ = ts.do("GET", "/v1/jobs/"+job.ID, nil)
	done := decodeAs[struct {
		State  string             `json:"state"`
		Files  []string           `json:"files"`
		Result result             `json:"result"`
		Secs   map[string]float64 `json:"seconds"`
	}](t, body)
	for _, f := range []string{"image.png", "plan.json", "geometry.json", "run.json", "trace.jsonl", "index.html", "objects/00-a-lion-mask.png"} {
		if !slices.Contains(done.Files, f) {
			t.Errorf("no %s in %v", f, done.Files)
		}
	}
	if done.State != "succeeded" || done.Result.Images[0] != "image.png" || done.Result.Seeds[0] != 3 || done.Secs["overall"] <= 0 {
		t.Errorf("job %s", body)
	}
	for name, ct := range map[string]string{"image.png": "image/png", "plan.json": "application/json", "trace.jsonl": "application/jsonl",
		"index.html": "text/html; charset=utf-8"} {
		code, _, h := ts.do("GET", "/v1/jobs/"+job.ID+"/files/"+name, nil)
		if code != http.StatusOK || h.Get("Content-Type") != ct {
			t.Errorf("%s: %d %s, want %s", name, code, h.Get("Content-Type"), ct)
		}
	}
	code, body, _ = ts.do("GET", "/v1/jobs", nil)
	if list := decodeAs[struct{ Jobs []map[string]any }](t, body); code != http.StatusOK || len(list.Jobs) != 1 || list.Jobs[0]["id"] != job.ID {
		t.Errorf("list %d %s", code, body)
	}
}

// With batch_objects false the objects run one by one: a stage per object,
// the plan's objects sorted by name as RFNet orders them, and the progress
// fraction never goes back.
func TestRFNetJobObjectByObject(t *testing.T) {
	ts := newTestServer(t, Options{Planner: fakePlanner(t, fakePlan)})
	code, body, _ := ts.do("POST", "/v1/rfnet/jobs", map[string]any{"prompt": "a mouse hunting a lion", "steps": 3,
		"width": 128, "height": 128, "seed": 3, "settings": map[string]any{"batch_objects": false}})
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", code, body)
	}
	job := decodeAs[struct {
		ID string `json:"id"`
	}](t, body)
	events, _ := ts.events(job.ID, "")
	var stages []string
	last := 0.0
	for _, e := range events {
		var d map[string]any
		if err := json.Unmarshal([]byte(e.Data), &d); err != nil {
			t.Fatalf("event %s: %v", e.Data, err)
		}
		switch e.Type {
		case "stage":
			stage := d["stage"].(string)
			if o, ok := d["object"]; ok {
				stage += strconv.Itoa(int(o.(float64)))
			}
			stages = append(stages, stage)
		case "step":
			f := d["fraction"].(float64)
			if f < last || f > 1 {
				t.Errorf("fraction %v after %v", f, last)
			}
			last = f
		}
	}
	if !slices.Equal(stages, []string{"plan", "object0", "object1", "overall"}) {
		t.Errorf("stages %v", stages)
	}
}

// A server with SAM and the SDXL refiner (serve --sam, --sdxl): an RFNet
// job's masks come from SAM (and settings.sam_box is accepted), its image is the
// refined one with the refiner's parameters text, run.json records the
// pass, and the progress reaches 1 through the refiner's steps; a request's
// "sdxl": false keeps the unrefined image. Without them, sam_box and
// "sdxl": true are refused naming the field (TestBadRequests).
func TestRFNetJobWithSAMAndSDXL(t *testing.T) {
	b := cpu.New()
	segmenter, err := sam.Load(fixtures.Path("sam", "tiny-sam"), b, tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	refiner, err := pipeline.LoadRefiner(fixtures.Path("models", "tiny-sdxl-refiner"), pipeline.LoadOptions{Backend: b, DType: tensor.Float32})
	if err != nil {
		t.Fatal(err)
	}
	defer refiner.Close()
	ckpt, err := infotext.RefinerCheckpointOf(refiner)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Options{SAM: segmenter, SDXL: &rfnet.SDXL{Refiner: refiner, Checkpoint: ckpt, Weights: "tiny-sdxl-refiner", Size: 64}})
	for _, c := range []struct {
		name  string
		sdxl  any // the request's field (nil: left out)
		image string
	}{
		{"default", nil, rfnet.SDXLImage},
		{"off", false, "image.png"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := map[string]any{"prompt": "a mouse hunting a lion", "steps": 2, "width": 64, "height": 64, "seed": 3}
			if c.sdxl != nil {
				req["sdxl"] = c.sdxl
			}
			code, body, _ := ts.do("POST", "/v1/rfnet/jobs", req)
			if code != http.StatusAccepted {
				t.Fatalf("submit: %d %s", code, body)
			}
			id := decodeAs[struct {
				ID string `json:"id"`
			}](t, body).ID
			events, _ := ts.events(id, "")
			last := 0.0
			for _, e := range events {
				var d map[string]any
				json.Unmarshal([]byte(e.Data), &d)
				if e.Type == "step" {
					if f := d["fraction"].(float64); f < last || f > 1 {
						t.Errorf("fraction %v after %v", f, last)
					} else {
						last = f
					}
				}
			}
			if last != 1 {
				t.Errorf("the progress ends at %v", last)
			}
			_, body, _ = ts.do("GET", "/v1/jobs/"+id, nil)
			done := decodeAs[struct {
				State  string   `json:"state"`
				Files  []string `json:"files"`
				Result result   `json:"result"`
			}](t, body)
			if done.State != "succeeded" || len(done.Result.Images) != 1 || done.Result.Images[0] != c.image {
				t.Fatalf("job %s", body)
			}
			refined := strings.Contains(done.Result.Infotexts[0], "tiny-sdxl-refiner") || strings.Contains(done.Result.Infotexts[0], ckpt.Name)
			if refined != (c.image == rfnet.SDXLImage) || slices.Contains(done.Files, rfnet.SDXLImage) != refined {
				t.Errorf("image %s, infotext %q, files %v", c.image, done.Result.Infotexts[0], done.Files)
			}
			_, raw, _ := ts.do("GET", "/v1/jobs/"+id+"/files/run.json", nil)
			var info struct {
				MaskMethod string          `json:"mask_method"`
				SDXL       json.RawMessage `json:"sdxl"`
			}
			if err := json.Unmarshal(raw, &info); err != nil {
				t.Fatal(err)
			}
			if info.MaskMethod != "sam-point" || (len(info.SDXL) > 0) != refined {
				t.Errorf("run.json: mask_method %q, sdxl %s", info.MaskMethod, info.SDXL)
			}
		})
	}
	code, body, _ := ts.do("POST", "/v1/rfnet/jobs", map[string]any{"prompt": "p", "steps": 1, "width": 64, "height": 64, "settings": map[string]any{"sam_box": true}})
	if code != http.StatusAccepted {
		t.Errorf("sam_box with SAM: %d %s", code, body)
	}
	// A strength that runs none of the refiner's steps is refused up front,
	// on both APIs, unless the refiner is skipped.
	for _, c := range []struct {
		path string
		req  map[string]any
		code int
	}{
		{"/v1/rfnet/jobs", map[string]any{"prompt": "p", "steps": 1, "width": 64, "height": 64, "settings": map[string]any{"sdxl_step_ratio": 0.01}}, http.StatusBadRequest},
		{"/v1/rfnet/jobs", map[string]any{"prompt": "p", "steps": 1, "width": 64, "height": 64, "sdxl": false, "settings": map[string]any{"sdxl_step_ratio": 0.01}}, http.StatusAccepted},
	} {
		code, body, _ := ts.do("POST", c.path, c.req)
		if code != c.code || (code == http.StatusBadRequest && !strings.Contains(string(body), `"param": "settings.sdxl_step_ratio"`) && !strings.Contains(string(body), `"param":"settings.sdxl_step_ratio"`)) {
			t.Errorf("%v: %d %s, want %d", c.req, code, body, c.code)
		}
	}
}
