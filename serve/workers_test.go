package serve

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// Two generations at once on one CPU model give what they give one after
// the other (run with -race: checkWorkers allows more than one worker on
// the CPU only because this holds).
func TestConcurrentGenerationsOnOneModel(t *testing.T) {
	m := tinyModel(t, "tiny-sd2")
	reqs := []pipeline.Request{
		{Prompt: "a red apple", Steps: 3, Width: 64, Height: 64, Seed: 1, Scheduler: "euler"},
		{Prompt: "a blue car", Steps: 3, Width: 64, Height: 64, Seed: 2, Scheduler: "ddim"},
	}
	want := make([][]float32, len(reqs))
	for i, r := range reqs {
		res, err := m.Generate(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.Image.Float32s()
	}
	got := make([][]float32, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := m.Generate(r, nil)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = res.Image.Float32s()
		}()
	}
	wg.Wait()
	for i := range reqs {
		if !bytes.Equal(f32bytes(got[i]), f32bytes(want[i])) {
			t.Errorf("request %d: concurrent image differs from the sequential one", i)
		}
	}
}

// The same holds for RFNet runs, whose steering keeps a gradient tape and
// captures attention maps: both per run, not per model.
func TestConcurrentRFNetRunsOnOneModel(t *testing.T) {
	m := tinyModel(t, "tiny-sd2")
	plan, err := llm.Offline{MaxObjects: 1}.Plan(context.Background(), "a cat on a sofa")
	if err != nil {
		t.Fatal(err)
	}
	run := func(seed uint64) []float32 {
		c := rfnet.Default().WithSeed(seed)
		c.Steps, c.Width, c.Height = 3, 128, 128
		res, err := rfnet.Run(m, plan, rfnet.Options{Config: c})
		if err != nil {
			t.Error(err)
			return nil
		}
		return res.Image.Float32s()
	}
	want := [][]float32{run(1), run(2)}
	got := make([][]float32, 2)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = run(uint64(i + 1))
		}()
	}
	wg.Wait()
	for i := range got {
		if !bytes.Equal(f32bytes(got[i]), f32bytes(want[i])) {
			t.Errorf("run %d: concurrent image differs from the sequential one", i)
		}
	}
}

func f32bytes(v []float32) []byte {
	var b bytes.Buffer
	for _, x := range v {
		b.WriteString(strconv.FormatFloat(float64(x), 'x', -1, 32))
	}
	return b.Bytes()
}

func TestWorkersRule(t *testing.T) {
	for _, c := range []struct {
		n      int
		device string
		ok     bool
	}{{1, "cpu", true}, {2, "cpu", true}, {1, "cuda", true}, {2, "cuda", false}, {0, "cpu", false}} {
		if err := checkWorkers(c.n, c.device); (err == nil) != c.ok || (err != nil && !strings.Contains(err.Error(), "--workers")) {
			t.Errorf("%d workers on %s: %v", c.n, c.device, err)
		}
	}
}
