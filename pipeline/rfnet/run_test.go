package rfnet

import (
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
)

func tinyModel(t testing.TB, model string, d tensor.DType) *pipeline.Model {
	t.Helper()
	return tinyModelOn(t, model, cpu.New(), d)
}

// tinyModelOn loads a tiny reference model onto backend b.
func tinyModelOn(t testing.TB, model string, b tensor.Backend, d tensor.DType) *pipeline.Model {
	t.Helper()
	m, err := pipeline.Load(fixtures.Path("models", model), pipeline.LoadOptions{Backend: b, DType: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func testPlan() *llm.Plan {
	return &llm.Plan{Version: llm.PlanVersion, Prompt: "a mouse hunting a lion",
		Objects: []llm.Object{
			{Name: "a mouse", Box: [4]float64{40, 260, 160, 160}, Descriptions: []string{"baring tiny teeth", "stalking low", "eyes fixed on its prey"}},
			{Name: "a lion", Box: [4]float64{240, 120, 240, 300}, Descriptions: []string{"cowering in fear", "backing away", "trembling"}},
		},
		Background: "the savanna at dusk"}
}

// testConfig is a short run of the tiny models at 128×128 (a 16×16 latent).
func testConfig() Config {
	c := Default()
	c.Steps, c.Width, c.Height = 8, 128, 128
	c.MaxIndexStep, c.OverallMaxIndexStep, c.AggStart = 4, 4, 2
	return c
}

func TestRunSmoke(t *testing.T) {
	m := tinyModel(t, "tiny-sd2", tensor.Float32)
	var events []TraceEvent
	res, err := Run(m, testPlan(), Options{Config: testConfig(), Trace: func(e TraceEvent) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("overall prompt %q", res.OverallPrompt)
	for _, o := range res.Objects {
		t.Logf("%s: %q shift %v", o.Name, o.Prompt, o.Shift)
	}
	n := 0
	for _, e := range events {
		if e.Loss != nil {
			n++
		}
	}
	t.Logf("%d steering iterations, image %v", n, res.Image.Shape())
}
