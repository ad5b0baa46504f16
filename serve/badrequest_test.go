package serve

import (
	"net/http"
	"strings"
	"testing"
)

// Every API refuses bad requests before queuing anything: 400 (413 for a
// body past --max-body) with the field's name in param.
func TestBadRequests(t *testing.T) {
	l := DefaultLimits()
	l.MaxBody = 2048
	ts := newTestServer(t, Options{Limits: l})
	const (
		openai = "/v1/images/generations"
		a1111  = "/sdapi/v1/txt2img"
		jobs   = "/v1/rfnet/jobs"
		plan   = "/v1/rfnet/plan"
	)
	box := func(b string) string {
		return `{"prompt": "p", "plan": {"objects": [{"name": "a", "box": [0, 0, 10, 10], "descriptions": ["d"]}, {"name": "b", "box": ` + b + `, "descriptions": ["d"]}]}}`
	}
	for _, c := range []struct {
		name, path, body, param string
		code                    int
	}{
		{"not json", openai, `{"prompt": `, "body", 400},
		{"empty body", openai, ``, "body", 400},
		{"two values", openai, `{"prompt": "x"} {}`, "body", 400},
		{"an array", openai, `[1]`, "body", 400},
		{"too large", openai, `{"prompt": "` + strings.Repeat("a", 3000) + `"}`, "body", 413},
		{"unknown field", openai, `{"prompt": "x", "foo": 1}`, "foo", 400},
		{"prompt of the wrong type", openai, `{"prompt": 5}`, "prompt", 400},
		{"no prompt", openai, `{}`, "prompt", 400},
		{"long prompt", openai, `{"prompt": "` + strings.Repeat("a", 2001) + `"}`, "prompt", 400},
		{"n 0", openai, `{"prompt": "x", "n": 0}`, "n", 400},
		{"n 5", openai, `{"prompt": "x", "n": 5}`, "n", 400},
		{"n 1.5", openai, `{"prompt": "x", "n": 1.5}`, "n", 400},
		{"size not a multiple of 8", openai, `{"prompt": "x", "size": "100x100"}`, "size", 400},
		{"size past the limit", openai, `{"prompt": "x", "size": "2048x64"}`, "size", 400},
		{"size not WxH", openai, `{"prompt": "x", "size": "big"}`, "size", 400},
		{"response_format", openai, `{"prompt": "x", "response_format": "png"}`, "response_format", 400},
		{"steps 0", openai, `{"prompt": "x", "steps": 0}`, "steps", 400},
		{"steps 151", openai, `{"prompt": "x", "steps": 151}`, "steps", 400},
		{"guidance 31", openai, `{"prompt": "x", "guidance": 31}`, "guidance", 400},
		{"guidance -1", openai, `{"prompt": "x", "guidance": -1}`, "guidance", 400},
		{"scheduler", openai, `{"prompt": "x", "scheduler": "lms"}`, "scheduler", 400},
		{"method", openai, `{"prompt": "x", "method": "dalle"}`, "method", 400},
		{"negative seed", openai, `{"prompt": "x", "seed": -1}`, "seed", 400},
		{"rfnet with a negative prompt", openai, `{"prompt": "x", "method": "rfnet", "negative_prompt": "y"}`, "negative_prompt", 400},
		{"rfnet steps", openai, `{"prompt": "x", "method": "rfnet", "steps": 0}`, "steps", 400},

		{"a1111 width", a1111, `{"prompt": "x", "width": 100}`, "width", 400},
		{"a1111 height", a1111, `{"prompt": "x", "height": 0}`, "height", 400},
		{"a1111 cfg_scale type", a1111, `{"prompt": "x", "cfg_scale": "high"}`, "cfg_scale", 400},
		{"a1111 sampler", a1111, `{"prompt": "x", "sampler_name": "Euler a"}`, "sampler_name", 400},
		{"a1111 sampler_index apart", a1111, `{"prompt": "x", "sampler_name": "DDIM", "sampler_index": "Euler"}`, "sampler_index", 400},
		{"a1111 batch", a1111, `{"prompt": "x", "batch_size": 3, "n_iter": 2}`, "batch_size", 400},
		{"a1111 n_iter", a1111, `{"prompt": "x", "n_iter": 0}`, "n_iter", 400},
		{"a1111 seed", a1111, `{"prompt": "x", "seed": -2}`, "seed", 400},
		{"a1111 enable_hr", a1111, `{"prompt": "x", "enable_hr": true}`, "enable_hr", 400},
		{"a1111 restore_faces", a1111, `{"prompt": "x", "restore_faces": true}`, "restore_faces", 400},
		{"a1111 styles", a1111, `{"prompt": "x", "styles": ["anime"]}`, "styles", 400},
		{"a1111 override_settings", a1111, `{"prompt": "x", "override_settings": {"CLIP_stop_at_last_layers": 2}}`, "override_settings", 400},
		{"a1111 subseed", a1111, `{"prompt": "x", "subseed": 5}`, "subseed", 400},
		{"a1111 unknown", a1111, `{"prompt": "x", "hr_scale": 2}`, "hr_scale", 400},
		{"a1111 steps", a1111, `{"prompt": "x", "steps": 1000}`, "steps", 400},

		{"job without prompt or plan", jobs, `{}`, "prompt", 400},
		{"job box off the canvas", jobs, box(`[500, 0, 100, 10]`), "plan.objects[1]", 400},
		{"job box without area", jobs, box(`[0, 0, 0, 10]`), "plan.objects[1]", 400},
		{"job box of the wrong type", jobs, box(`"left"`), "plan.objects.box", 400},
		{"job plan field", jobs, `{"plan": {"objects": [], "colour": "red"}}`, "plan.colour", 400},
		{"job plan version", jobs, `{"prompt": "p", "plan": {"version": 2, "objects": []}}`, "plan.version", 400},
		{"job too many objects", jobs, `{"prompt": "p", "plan": {"objects": [` + strings.Repeat(`{"name": "a", "box": [0, 0, 9, 9], "descriptions": ["d"]},`, 6) + `{"name": "a", "box": [0, 0, 9, 9], "descriptions": ["d"]}]}}`, "plan.objects", 400},
		{"job settings unknown key", jobs, `{"prompt": "p", "settings": {"loss_scael": 5}}`, "settings.loss_scael", 400},
		{"job settings value", jobs, `{"prompt": "p", "settings": {"loss_scale": -1}}`, "settings.loss_scale", 400},
		{"job settings type", jobs, `{"prompt": "p", "settings": {"mask_threshold": "high"}}`, "settings.mask_threshold", 400},
		{"job settings list", jobs, `{"prompt": "p", "settings": {"max_iter": [1, -1]}}`, "settings.max_iter[1]", 400},
		{"job settings steps", jobs, `{"prompt": "p", "settings": {"num_inference_steps": 200}}`, "settings.num_inference_steps", 400},
		{"job settings scheduler", jobs, `{"prompt": "p", "settings": {"scheduler": "lms"}}`, "settings.scheduler", 400},
		{"job settings sam box", jobs, `{"prompt": "p", "settings": {"sam_box": true}}`, "settings.sam_box", 400},
		{"job sdxl", jobs, `{"prompt": "p", "sdxl": true}`, "sdxl", 400},
		{"job sdxl type", jobs, `{"prompt": "p", "sdxl": "yes"}`, "sdxl", 400},
		{"openai sdxl sd", openai, `{"prompt": "p", "sdxl": false}`, "sdxl", 400},
		{"openai sdxl", openai, `{"prompt": "p", "method": "rfnet", "sdxl": true}`, "sdxl", 400},
		{"job settings not an object", jobs, `{"prompt": "p", "settings": [1]}`, "settings", 400},
		{"job steps", jobs, `{"prompt": "p", "steps": 0}`, "steps", 400},
		{"job width", jobs, `{"prompt": "p", "width": 12}`, "width", 400},
		{"job guidance", jobs, `{"prompt": "p", "guidance": 99}`, "guidance", 400},
		{"job preview_every", jobs, `{"prompt": "p", "preview_every": -1}`, "preview_every", 400},
		{"job timeout 0", jobs, `{"prompt": "p", "timeout_seconds": 0}`, "timeout_seconds", 400},
		{"job timeout past --job-timeout", jobs, `{"prompt": "p", "timeout_seconds": 1e9}`, "timeout_seconds", 400},

		{"plan without prompt", plan, `{"prompt": ""}`, "prompt", 400},
		{"plan planner", plan, `{"prompt": "p", "planner": "gpt"}`, "planner", 400},
		{"plan max_objects", plan, `{"prompt": "p", "max_objects": 0}`, "max_objects", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := ts.do("POST", c.path, c.body)
			e := decodeAs[errorBody](t, body)
			if code != c.code || e.Error.Param != c.param || e.Error.Type != "invalid_request_error" || e.Error.Message == "" {
				t.Errorf("%d %s, want %d naming %q", code, body, c.code, c.param)
			}
		})
	}
	if st := ts.queue.Stats(); st.Queued+st.Running != 0 || len(ts.queue.List()) != 0 {
		t.Errorf("bad requests queued jobs: %+v", st)
	}
	t.Run("Last-Event-ID", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/jobs/0123456789abcdef/events", nil)
		req.Header.Set("Last-Event-ID", "x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%d", resp.StatusCode)
		}
	})
}
