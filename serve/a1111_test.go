package serve

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rfnet/rfnet-native/pipeline"
)

// txt2img's info.infotexts[i] is the parameters text inside images[i].
func TestA1111Txt2Img(t *testing.T) {
	ts := newTestServer(t, Options{})
	req := map[string]any{"prompt": "a cat, \"Tom\": chased", "negative_prompt": "blurry", "steps": 2, "cfg_scale": 6.5,
		"width": 64, "height": 64, "seed": -1, "sampler_name": "Euler", "batch_size": 2, "n_iter": 1,
		"send_images": true, "save_images": false, "styles": []string{}, "override_settings": map[string]any{}, "subseed": -1}
	code, body, _ := ts.do("POST", "/sdapi/v1/txt2img", req)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	answer := decodeAs[struct {
		Images     []string          `json:"images"`
		Parameters txt2imgParameters `json:"parameters"`
		Info       string            `json:"info"`
	}](t, body)
	info := decodeAs[struct {
		Seed      uint64   `json:"seed"`
		AllSeeds  []uint64 `json:"all_seeds"`
		Sampler   string   `json:"sampler_name"`
		Infotexts []string `json:"infotexts"`
		ModelHash string   `json:"sd_model_hash"`
	}](t, []byte(answer.Info))
	if len(answer.Images) != 2 || len(info.Infotexts) != 2 || len(info.AllSeeds) != 2 || info.AllSeeds[1] != info.Seed+1 {
		t.Fatalf("answer: %d images, info %s", len(answer.Images), answer.Info)
	}
	if p := answer.Parameters; p.Seed != int64(info.Seed) || p.SamplerName != "Euler" || p.Steps != 2 || p.BatchSize != 2 {
		t.Errorf("parameters %+v, seed %d", p, info.Seed)
	}
	if info.ModelHash != ts.o.Checkpoint.Hash || info.Sampler != "Euler" {
		t.Errorf("info %s", answer.Info)
	}
	dir := t.TempDir()
	for i, b64 := range answer.Images {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "image.png")
		os.WriteFile(path, raw, 0o644)
		text, err := pipeline.ReadPNGText(path)
		if err != nil {
			t.Fatal(err)
		}
		if text["parameters"] != info.Infotexts[i] {
			t.Errorf("image %d: PNG's parameters\n%q\ninfotexts[%d]\n%q", i, text["parameters"], i, info.Infotexts[i])
		}
	}
}

func TestA1111Lists(t *testing.T) {
	ts := newTestServer(t, Options{})
	code, body, _ := ts.do("GET", "/sdapi/v1/samplers", nil)
	samplers := decodeAs[[]struct {
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
	}](t, body)
	names := map[string]string{}
	for _, s := range samplers {
		names[s.Name] = s.Aliases[0]
	}
	if code != http.StatusOK || !reflect.DeepEqual(names, map[string]string{"DDIM": "ddim", "PLMS": "pndm", "Euler": "euler", "DPM++ 2M": "dpm++2m"}) {
		t.Errorf("samplers %d %s", code, body)
	}
	code, body, _ = ts.do("GET", "/sdapi/v1/sd-models", nil)
	models := decodeAs[[]struct {
		Title, ModelName, Hash, SHA256, Filename string
	}](t, body)
	c := ts.o.Checkpoint
	if code != http.StatusOK || len(models) != 1 || models[0].Hash != c.Hash || models[0].SHA256 != c.SHA256 ||
		models[0].Title != "tiny-sd2 ["+c.Hash+"]" || models[0].Filename != ts.o.Model.Path {
		t.Errorf("sd-models %d %s", code, body)
	}
	// Idle: all zeros.
	code, body, _ = ts.do("GET", "/sdapi/v1/progress", nil)
	idle := decodeAs[map[string]any](t, body)
	if code != http.StatusOK || idle["progress"] != 0.0 || idle["current_image"] != nil {
		t.Errorf("idle progress %s", body)
	}
}
