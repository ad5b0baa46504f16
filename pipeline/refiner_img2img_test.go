package pipeline

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// refineCase is one reference run of testdata/gen/make_refiner_img2img.py
// (testdata/refiner/refiner-<name>.json and .safetensors).
type refineCase struct {
	Prompt                 string  `json:"prompt"`
	Negative               string  `json:"negative"`
	Strength               float64 `json:"strength"`
	Steps                  int     `json:"steps"`
	Guidance               float64 `json:"guidance"`
	Seed                   uint64  `json:"seed"`
	AestheticScore         float64 `json:"aesthetic_score"`
	NegativeAestheticScore float64 `json:"negative_aesthetic_score"`
	Image                  string  `json:"image"`
	CondIDs                []int32 `json:"cond_ids"`
	UncondIDs              []int32 `json:"uncond_ids"`
}

// The refiner's img2img matches diffusers' StableDiffusionXLImg2ImgPipeline
// on the tiny refiner: strengths 0.3 and 0.5, 10 and 20 steps, with and
// without a negative prompt, a prompt past 77 tokens, non-square images and
// guidance 1 (no CFG). The seeds' draws (posterior sample, then noise) are
// torch's; every stage is compared, the final latents within 1e-3 and the
// image within 2/255.
func TestRefineMatchesReference(t *testing.T) {
	r := loadTinyRefiner(t, false)
	for _, name := range []string{"plain", "negative", "long", "nocfg"} {
		t.Run(name, func(t *testing.T) {
			var c refineCase
			raw, err := os.ReadFile(fixtures.Path("refiner", "refiner-"+name+".json"))
			if err == nil {
				err = json.Unmarshal(raw, &c)
			}
			if err != nil {
				t.Fatal(err)
			}
			f, err := weights.Open(fixtures.Path("refiner", "refiner-"+name+".safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := func(n string) *tensor.Tensor {
				x, err := f.Load(cpu.New(), n, tensor.Float64)
				if err != nil {
					t.Fatal(err)
				}
				return x
			}
			q := NewRefineRequest(FromImage(r.Backend, tensor.Float64, readPNG(t, fixtures.Path("refiner", c.Image))), c.Prompt)
			q.NegativePrompt, q.Strength, q.Steps, q.Guidance, q.Seed = c.Negative, c.Strength, c.Steps, c.Guidance, c.Seed
			q.AestheticScore, q.NegativeAestheticScore = c.AestheticScore, c.NegativeAestheticScore
			var steps []int
			q.Progress = func(step, total int, _ *tensor.Tensor) {
				if total != q.StepsRun() {
					t.Errorf("progress: step %d of %d, want of %d", step, total, q.StepsRun())
				}
				steps = append(steps, step)
			}
			got, err := r.Refine(q)
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != q.StepsRun() || len(steps) != len(got.Timesteps) || steps[0] != 1 || steps[len(steps)-1] != len(steps) {
				t.Errorf("progress steps %v, want 1 to %d", steps, q.StepsRun())
			}
			if ids, _ := r.Tokenizer.Tokenize(c.Prompt); !slices.Equal(ids, c.CondIDs) {
				t.Fatalf("prompt ids %v\nwant %v", ids, c.CondIDs)
			}
			if !slices.Equal(got.Timesteps, want("timesteps").Float64s()) {
				t.Fatalf("timesteps %v, want %v", got.Timesteps, want("timesteps").Float64s())
			}
			type check struct {
				name string
				got  *tensor.Tensor
				tol  float64
			}
			checks := []check{{"cond", got.Cond, 1e-4}, {"pooled", got.Pooled, 1e-4}, {"init_latents", got.InitLatents, 1e-4}, {"latents", got.Latents, 1e-3}}
			if c.Guidance > 1 {
				checks = append(checks, check{"uncond", got.Uncond, 1e-4}, check{"uncond_pooled", got.UncondPooled, 1e-4})
			} else if got.Uncond != nil {
				t.Fatalf("guidance %v: an unconditional embedding was computed", c.Guidance)
			}
			for _, k := range checks {
				e := fixtures.RelL2(k.got, want(k.name))
				if !(e < k.tol) {
					t.Errorf("%s: relative L2 error %.3g (want < %g)", k.name, e, k.tol)
				}
				t.Logf("%s: relative L2 error %.3g", k.name, e)
			}
			for _, k := range []struct {
				name string
				got  []float64
			}{{"time_ids", got.TimeIDs}, {"neg_time_ids", got.NegativeTimeIDs}} {
				if k.name == "neg_time_ids" && c.Guidance <= 1 {
					continue
				}
				if !slices.Equal(k.got, want(k.name).Float64s()) {
					t.Errorf("%s %v, want %v", k.name, k.got, want(k.name).Float64s())
				}
			}
			worst := 0.0
			for i, v := range want("image").Float64s() {
				worst = math.Max(worst, math.Abs(got.Image.Float64s()[i]-v))
			}
			if worst > 2.0/255 {
				t.Errorf("image: worst pixel differs by %.4f (> 2/255)", worst)
			}
			t.Logf("image: worst pixel differs by %.2g", worst)
		})
	}
}

// Requests the pipeline cannot run are refused before any work, by field.
func TestRefineRefusesBadRequests(t *testing.T) {
	r := loadTinyRefiner(t, false)
	b := cpu.New()
	img := tensor.Zeros(b, tensor.Float64, 1, 3, 64, 48)
	nan := tensor.FromFloat64(b, tensor.Float64, tensor.Shape{1, 3, 8, 8}, append([]float64{math.NaN()}, make([]float64, 191)...))
	for _, c := range []struct {
		change func(*RefineRequest)
		want   string
	}{
		{func(q *RefineRequest) { q.Image = nil }, "image none, want [1, 3, H, W]"},
		{func(q *RefineRequest) { q.Image = tensor.Zeros(b, tensor.Float64, 1, 3, 64, 44) }, "image width 44: want a multiple of 8"},
		{func(q *RefineRequest) { q.Image = nan }, "the image to refine"},
		{func(q *RefineRequest) { q.Strength = 0 }, "strength 0 must be in (0, 1]"},
		{func(q *RefineRequest) { q.Strength = 1.5 }, "strength 1.5 must be in (0, 1]"},
		{func(q *RefineRequest) { q.Steps, q.Strength = 3, 0.3 }, "3 steps at strength 0.3 run no step"},
		{func(q *RefineRequest) { q.Guidance = math.Inf(1) }, "guidance +Inf"},
		{func(q *RefineRequest) { q.AestheticScore = math.NaN() }, "aesthetic scores NaN and 2.5 must be finite"},
	} {
		q := NewRefineRequest(img, "a lion")
		c.change(&q)
		if _, err := r.Refine(q); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one saying %q", err, c.want)
		}
	}
}
