package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fakehub"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// writeAttention writes a [h, w] "attention" map (its peak at cell (r, c)) under name.
func writeAttention(t *testing.T, path, name string, h, w, r, c int) {
	t.Helper()
	v := make([]float64, h*w)
	for i := range v {
		y, x := i/w, i%w
		v[i] = 1 / (1 + float64((y-r)*(y-r)+(x-c)*(x-c)))
	}
	a := tensor.FromFloat64(cpu.New(), tensor.Float64, tensor.Shape{h, w}, v)
	if err := weights.Save(path, []weights.Entry{{Name: name, Tensor: a, DType: tensor.Float32}}, nil); err != nil {
		t.Fatal(err)
	}
}

// segment with --point writes the reference's masks (testdata/sam, the
// "wide-point" case of make_sam.py) and three PNGs at the image's size.
func TestSegmentPointMatchesReference(t *testing.T) {
	dir := t.TempDir()
	err := run([]string{"segment", "--sam", fixtures.Path("sam", "tiny-sam"), "--device", "cpu", "--dtype", "fp32",
		"--image", fixtures.Path("sam", "images", "wide.png"), "--point", "137,52", "--embeddings", "--out-dir", dir})
	if err != nil {
		t.Fatal(err)
	}
	got, err := weights.Open(filepath.Join(dir, "masks.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	ref, err := weights.Open(fixtures.Path("sam", "parity.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for name, want := range map[string]string{"low_res_logits": "low_res_logits", "masks": "masks", "iou": "iou", "image_embeddings": "image_embeddings"} {
		g, err := got.Load(cpu.New(), name, tensor.Float64)
		if err != nil {
			t.Fatal(err)
		}
		w, err := ref.Load(cpu.New(), "wide-point/"+want, tensor.Float64)
		if err != nil {
			t.Fatal(err)
		}
		if !g.Shape().Equal(w.Shape()) {
			t.Fatalf("%s: shape %v, want %v", name, g.Shape(), w.Shape())
		}
		if e := fixtures.RelL2(g, w); e > 1e-4 {
			t.Errorf("%s: relative L2 error %.3g", name, e)
		}
	}
	for i := 0; i < 3; i++ {
		im := decodePNG(t, filepath.Join(dir, "mask_"+string(rune('0'+i))+".png"))
		if b := im.Bounds(); b.Dx() != 200 || b.Dy() != 120 {
			t.Errorf("mask_%d.png is %v, want 200x120", i, b)
		}
	}
}

// segment --attention --select writes selected.png (64×64) and selected.json
// with §8.1's choice; --box prompts with the attention's box.
func TestSegmentSelect(t *testing.T) {
	att := filepath.Join(t.TempDir(), "a.safetensors")
	writeAttention(t, att, "attention", 16, 16, 4, 11)
	for _, box := range []bool{false, true} {
		dir := t.TempDir()
		args := []string{"segment", "--sam", fixtures.Path("sam", "tiny-sam"), "--device", "cpu",
			"--image", fixtures.Path("sam", "images", "tall.png"), "--attention", att, "--select", "--out-dir", dir}
		if box {
			args = append(args, "--box")
		}
		if err := run(args); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "selected.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"index", "scores", "sizes", "confidences", "coarse_ious", "point", "cell"} {
			if _, ok := s[k]; !ok {
				t.Errorf("selected.json has no %q: %s", k, raw)
			}
		}
		// The peak cell (4, 11) of a 70x150 image: its corner (11·70/16, 4·150/16).
		if p := s["point"].([]any); p[0].(float64) != 48 || p[1].(float64) != 37 {
			t.Errorf("point %v, want [48 37]", p)
		}
		if _, ok := s["box"]; ok != box {
			t.Errorf("box mode %v, selected.json %s", box, raw)
		}
		if b := decodePNG(t, filepath.Join(dir, "selected.png")).Bounds(); b.Dx() != 64 || b.Dy() != 64 {
			t.Errorf("selected.png is %v, want 64x64", b)
		}
	}
}

// Bad input is refused early with the flag, file, tensor or size at fault.
func TestSegmentErrors(t *testing.T) {
	tmp := t.TempDir()
	att, wrongName, wrongShape := filepath.Join(tmp, "a.safetensors"), filepath.Join(tmp, "n.safetensors"), filepath.Join(tmp, "s.safetensors")
	writeAttention(t, att, "attention", 16, 16, 3, 3)
	writeAttention(t, wrongName, "maps", 16, 16, 3, 3)
	a := tensor.FromFloat64(cpu.New(), tensor.Float64, tensor.Shape{2, 16, 16}, make([]float64, 512))
	if err := weights.Save(wrongShape, []weights.Entry{{Name: "attention", Tensor: a, DType: tensor.Float32}}, nil); err != nil {
		t.Fatal(err)
	}
	// A SAM folder whose weights lack a tensor.
	broken := filepath.Join(tmp, "broken-sam")
	os.MkdirAll(broken, 0o755)
	cfg, _ := os.ReadFile(fixtures.Path("sam", "tiny-sam", "config.json"))
	os.WriteFile(filepath.Join(broken, "config.json"), cfg, 0o644)
	f, err := weights.Open(fixtures.Path("sam", "tiny-sam", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []weights.Entry
	for _, n := range f.Names() {
		if n != "mask_decoder.iou_token.weight" {
			x, _ := f.Load(cpu.New(), n, tensor.Float32)
			entries = append(entries, weights.Entry{Name: n, Tensor: x, DType: tensor.Float32})
		}
	}
	f.Close()
	if err := weights.Save(filepath.Join(broken, "model.safetensors"), entries, nil); err != nil {
		t.Fatal(err)
	}
	notImage := filepath.Join(tmp, "x.png")
	os.WriteFile(notImage, []byte("not a png"), 0o644)

	tiny, img := fixtures.Path("sam", "tiny-sam"), fixtures.Path("sam", "images", "wide.png")
	base := func(extra ...string) []string {
		return append([]string{"segment", "--device", "cpu", "--out-dir", filepath.Join(tmp, "out")}, extra...)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{base("--image", img, "--point", "1,1"), "--sam is required"},
		{base("--sam", tiny, "--image", img), "one of --point"},
		{base("--sam", tiny, "--image", img, "--point", "1,1", "--attention", att, "--select"), "one of --point"},
		{base("--sam", tiny, "--image", img, "--attention", att), "needs --select"},
		{base("--sam", tiny, "--image", img, "--point", "1,1", "--box"), "--box needs --select"},
		{base("--sam", tiny, "--image", img, "--point", "x"), "--point \"x\""},
		{base("--sam", tiny, "--image", img, "--point", "200,10"), "outside the 200x120 image"},
		{base("--sam", tiny, "--image", notImage, "--point", "1,1"), "--image " + notImage},
		{base("--sam", tiny, "--image", filepath.Join(tmp, "missing.png"), "--point", "1,1"), "missing.png"},
		{base("--sam", tiny, "--image", img, "--attention", wrongName, "--select"), "no tensor \"attention\""},
		{base("--sam", tiny, "--image", img, "--attention", wrongShape, "--select"), "shape [2 16 16]"},
		{base("--sam", broken, "--image", img, "--point", "1,1"), "mask_decoder.iou_token.weight"},
		{base("--sam", filepath.Join(tmp, "nowhere"), "--image", img, "--point", "1,1"), "--sam"},
	} {
		err := run(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args[5:], err, c.want)
		}
	}
}

// --sam sam-vit-base comes from the Hub (here a fake one serving the tiny
// model under facebook/sam-vit-base): config.json and model.safetensors only.
func TestSegmentSAMFromHub(t *testing.T) {
	files := map[string][]byte{}
	for _, n := range []string{"config.json", "model.safetensors"} {
		files[n], _ = os.ReadFile(fixtures.Path("sam", "tiny-sam", n))
	}
	files["pytorch_model.bin"] = []byte("never fetched")
	s := fakehub.New(map[string]*fakehub.Repo{"facebook/sam-vit-base": {Commit: strings.Repeat("d", 40), Files: files}})
	t.Cleanup(s.Close)
	t.Setenv("HF_ENDPOINT", s.URL)
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "")
	dir := t.TempDir()
	err := run([]string{"segment", "--sam", "sam-vit-base", "--device", "cpu", "--image", fixtures.Path("sam", "images", "square.png"),
		"--point", "10,10", "--out-dir", dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Requests() {
		if strings.Contains(r, "pytorch_model.bin") {
			t.Errorf("fetched %s", r)
		}
	}
	d, ok := cachedSAM()
	if !ok || !strings.Contains(d, "models--facebook--sam-vit-base") {
		t.Errorf("cachedSAM() = %q, %v after the download", d, ok)
	}
	if out := captureStdout(t, func() error { return run([]string{"download", "sam-vit-base"}) }); strings.TrimSpace(out) != d {
		t.Errorf("download sam-vit-base printed %q, want %q", out, d)
	}
}

// generate --sam cuts the objects' masks with §8.1 on the tiny SAM, writes
// the candidates and the choice, and says so in run.json; without SAM (and
// none in the cache) run.json says the attention made them.
func TestRFNetWithSAM(t *testing.T) {
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.json")
	os.WriteFile(plan, []byte(`{"version": 1, "prompt": "a cat and a ball", "objects": [
  {"name": "a cat", "box": [20, 30, 200, 200], "descriptions": ["sleeping", "curled up", "purring"]},
  {"name": "a ball", "box": [300, 280, 150, 150], "descriptions": ["red", "bouncing", "rubber"]}],
  "background": "a garden", "negative": ""}`), 0o644)
	for _, c := range []struct {
		name   string
		extra  []string
		method string
	}{
		{"point", []string{"--sam", fixtures.Path("sam", "tiny-sam")}, "sam-point"},
		{"box", []string{"--sam", fixtures.Path("sam", "tiny-sam"), "--sam-box"}, "sam-box"},
		{"none", nil, "attention"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name)
			if err := run(rfnetArgs(out, append([]string{"--plan", plan, "--no-saa"}, c.extra...)...)); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(out, "run.json"))
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				MaskMethod string `json:"mask_method"`
				SAM        []*struct {
					Method      string    `json:"method"`
					Index       int       `json:"index"`
					Sizes       []int     `json:"sizes"`
					Confidences []float64 `json:"confidences"`
					CoarseIoUs  []float64 `json:"coarse_ious"`
				} `json:"sam"`
			}
			if err := json.Unmarshal(raw, &info); err != nil {
				t.Fatal(err)
			}
			if info.MaskMethod != c.method {
				t.Fatalf("mask_method %q, want %q", info.MaskMethod, c.method)
			}
			page, _ := os.ReadFile(filepath.Join(out, "index.html"))
			if c.method == "attention" {
				if len(info.SAM) != 0 || strings.Contains(string(page), "SAM candidates") {
					t.Errorf("no SAM, but run.json has %d choices or index.html shows candidates", len(info.SAM))
				}
				return
			}
			if len(info.SAM) != 2 || info.SAM[0] == nil || info.SAM[0].Method != c.method || len(info.SAM[0].Sizes) != 3 || len(info.SAM[0].CoarseIoUs) != 3 {
				t.Fatalf("run.json sam: %s", raw)
			}
			for j, o := range []string{"00-a-ball", "01-a-cat"} {
				for k := 0; k < 3; k++ {
					f := filepath.Join("objects", o+"-sam-"+string(rune('0'+k))+".png")
					if _, err := os.Stat(filepath.Join(out, f)); err != nil {
						t.Errorf("object %d: %v", j, err)
					}
					if !strings.Contains(string(page), f) {
						t.Errorf("index.html does not show %s", f)
					}
				}
			}
		})
	}
}
