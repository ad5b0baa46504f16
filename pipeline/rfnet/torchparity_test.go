package rfnet

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// Our whole stage 2 matches its PyTorch twin scripts/torch_rfnet.py (diffusers'
// UNet, torch.autograd for the steering gradient) on the tiny SD 2.x model in
// fp32 on the CPU: every steering iteration's loss, each object's final
// latent and mask, and the scene's final latent (testdata/torch-rfnet,
// written by testdata/gen/make_torch_rfnet.py). So the two time the same
// computation when scripts/gpu-check.sh runs both.
func TestTorchRFNetParity(t *testing.T) {
	plan, err := llm.ReadPlan(fixtures.Path("torch-rfnet", "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := tinyModel(t, "tiny-sd2", tensor.Float32)
	for _, name := range []string{"threshold", "forced"} {
		t.Run(name, func(t *testing.T) {
			c, err := LoadConfig(fixtures.Path("torch-rfnet", name+".config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var losses []TraceEvent
			objectLatents := map[int]*tensor.Tensor{}
			res, err := Run(m, plan, Options{Config: c,
				Trace: func(e TraceEvent) {
					if e.Loss != nil {
						losses = append(losses, e)
					}
				},
				Latent: func(stage string, object, step int, z *tensor.Tensor) {
					if stage == "object" && step == c.Steps {
						objectLatents[object] = z
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			f, err := weights.Open(fixtures.Path("torch-rfnet", name+".safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := func(key string) []float64 {
				x, err := f.Load(cpu.New(), key, tensor.Float64)
				if err != nil {
					t.Fatal(err)
				}
				return x.Float64s()
			}
			raw, err := os.ReadFile(fixtures.Path("torch-rfnet", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var meta struct {
				Trace []struct {
					Stage     string
					Object    *int
					Step      int
					Iteration int
					Loss      float64
				}
			}
			if err := json.Unmarshal(raw, &meta); err != nil {
				t.Fatal(err)
			}

			// The same iterations at the same steps, with the same losses.
			// torch_rfnet.py runs the objects one by one; the batch (the
			// default) reports them interleaved step by step, so the
			// iterations pair by run, step and iteration, not by order.
			if len(losses) != len(meta.Trace) {
				t.Fatalf("%d steering iterations, torch_rfnet.py made %d", len(losses), len(meta.Trace))
			}
			type iterKey struct {
				stage                   string
				object, step, iteration int
			}
			torchLoss := map[iterKey]float64{}
			for _, w := range meta.Trace {
				k := iterKey{w.Stage, -1, w.Step, w.Iteration}
				if w.Object != nil {
					k.object = *w.Object
				}
				torchLoss[k] = w.Loss
			}
			worst := 0.0
			for i, e := range losses {
				k := iterKey{e.Stage, -1, *e.Step, *e.Iteration}
				if e.Object != nil {
					k.object = *e.Object
				}
				wl, ok := torchLoss[k]
				if !ok {
					t.Fatalf("iteration %d: ours is %s object %d step %d #%d, which torch_rfnet.py did not make", i, k.stage, k.object, k.step, k.iteration)
				}
				delete(torchLoss, k) // each pairs once
				rel := math.Abs(*e.Loss-wl) / math.Abs(wl)
				worst = math.Max(worst, rel)
				// 2e-5: the self-attention runs fused (float64 sums on the CPU)
				// where torch composes float32 matmul and softmax; the worst
				// loss moved from 4.7e-6 to 1.1e-5 with it, and to 7.9e-6 with
				// the stacked QKV projection besides (the final latents did
				// not: 2.5e-6 to 2.7e-6 throughout).
				if rel > 2e-5 {
					t.Errorf("%s object %v step %d iteration %d: loss %.8g, torch %.8g (rel. %.2g)", e.Stage, e.Object, *e.Step, *e.Iteration, *e.Loss, wl, rel)
				}
			}
			t.Logf("%d steering iterations, worst loss rel. error %.2g", len(losses), worst)

			for j, o := range res.Objects {
				key := fmt.Sprintf("object.%d.", j)
				if r := relL2(objectLatents[j].Float64s(), want(key+"latents")); r > 1e-5 {
					t.Errorf("object %d final latent: rel. L2 %.2g", j, r)
				} else {
					t.Logf("object %d final latent: rel. L2 %.2g", j, r)
				}
				for _, mk := range []struct {
					name string
					got  []float64
				}{{"mask", o.Mask}, {"aligned_mask", o.AlignedMask}} {
					w := want(key + mk.name)
					for i := range w {
						if w[i] != mk.got[i] {
							t.Errorf("object %d %s differs at cell %d: %v, torch %v", j, mk.name, i, mk.got[i], w[i])
							break
						}
					}
				}
			}
			r := relL2(res.Latents.Float64s(), want("latents"))
			t.Logf("final latent: rel. L2 %.2g", r)
			if r > 1e-5 {
				t.Errorf("final latent: rel. L2 %.2g, want 1e-5 or less", r)
			}
		})
	}
}

func relL2(got, want []float64) float64 {
	num, den := 0.0, 0.0
	for i := range want {
		d := got[i] - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}
