package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/randckpt"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// engineReport is what bench-engine measures, printed as a table and written as JSON.
type engineReport struct {
	Model   string        `json:"model"`
	Weights string        `json:"weights"`
	Device  string        `json:"device"`
	DType   string        `json:"dtype"`
	Latent  int           `json:"latent_size"`
	LoadS   float64       `json:"load_s"`
	Timings []stageTiming `json:"timings"`
}

// stageTiming is one measured call: the median and fastest of its runs
// after one warm-up, and the device memory it peaked at (GPU only).
type stageTiming struct {
	Name     string  `json:"name"`
	MedianMS float64 `json:"median_ms"`
	MinMS    float64 `json:"min_ms"`
	Runs     int     `json:"runs"`
	PeakMiB  float64 `json:"peak_mib,omitempty"`
}

// memoryStats is implemented by backends that track device memory (cuda).
type memoryStats interface {
	MemoryStats() (inUse, peak int64)
	ResetPeak()
}

func setupBenchEngine(fs *pflag.FlagSet) func() error {
	var m modelFlags
	m.register(fs)
	model := fs.String("model", "sd15", "with no --weights: random full-size weights in the layout of sd15 or sd21 (built in a temporary file)")
	size := fs.Int("size", 0, "latent size (0: the model's native size, 64 for 512×512)")
	iters := fs.Int("iters", 5, "timed runs of each call after one warm-up")
	steps := fs.Int("steps", 50, "DDIM steps of the denoising-loop measurement (0 skips it)")
	out := fs.String("json", "", "also write the report as JSON to this file")
	return func() error {
		if *iters < 1 {
			return fmt.Errorf("--iters %d: want at least 1", *iters)
		}
		b, d, err := m.backend()
		if err != nil {
			return err
		}
		r := engineReport{Model: *model, Device: b.Name(), DType: d.String()}
		if m.weights == "" {
			path, cleanup, err := randomCheckpoint(*model)
			if err != nil {
				return err
			}
			defer cleanup()
			m.weights, r.Weights = path, "random "+*model
			if m.modelType == "" && *model == "sd21" {
				m.modelType = "sd21-base"
			}
		} else {
			r.Weights, r.Model = m.weights, ""
		}
		o, err := m.options(b, d)
		if err != nil {
			return err
		}
		o.NoTokenizer = true // token ids are fixed: no vocabulary needed
		start := time.Now()
		mdl, err := pipeline.Load(m.weights, o)
		if err != nil {
			return err
		}
		defer mdl.Close()
		if err := b.Sync(); err != nil {
			return err
		}
		r.LoadS = time.Since(start).Seconds()
		if r.Model == "" {
			r.Model = mdl.Variant.Name
		}
		r.Latent = *size
		if r.Latent == 0 {
			r.Latent = mdl.Variant.Width / 8
		}
		if r.Timings, err = benchStages(mdl, r.Latent, *iters, *steps); err != nil {
			return err
		}
		printEngineReport(r)
		if *out != "" {
			raw, _ := json.MarshalIndent(r, "", "  ")
			return atomicfile.WriteBytes(*out, append(raw, '\n'))
		}
		return nil
	}
}

// randomCheckpoint writes a full-size single-file checkpoint of model with
// random half-precision weights to a temporary file.
func randomCheckpoint(model string) (string, func(), error) {
	man, err := randckpt.ReadSingleFile(model + "-single-file")
	if err != nil {
		return "", nil, fmt.Errorf("--model %q: want sd15 or sd21 (%v)", model, err)
	}
	dir, err := os.MkdirTemp("", "rfnet-bench-engine")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	path := filepath.Join(dir, model+".safetensors")
	fmt.Fprintf(os.Stderr, "writing random %s weights to %s\n", model, path)
	if err := randckpt.Write(path, man, 1); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}

// benchStages times the calls a generation is made of.
func benchStages(m *pipeline.Model, size, iters, steps int) ([]stageTiming, error) {
	b, d := m.Backend, m.DType
	// CLIP's special tokens are the vocabulary's last two ids: <start> a
	// mouse <end>, then <end> as padding (SD 1.x's; the cost is the same).
	vocab := int32(m.Variant.Text.VocabSize)
	ids := make([]int32, 77)
	for i := range ids {
		ids[i] = vocab - 1
	}
	ids[0], ids[1], ids[2] = vocab-2, 320%(vocab-2), 3077%(vocab-2)
	tokens := tensor.FromInt32(b, tensor.Shape{1, 77}, ids)
	var ctx *tensor.Tensor
	encode := func() error { ctx = m.Text.Encode(tokens).To(d); return nil }
	if err := encode(); err != nil {
		return nil, err
	}
	z := m.Noise(1, 8*size, 8*size, 1)
	z2, ctx2 := tensor.Concat(0, z, z), tensor.Concat(0, ctx, ctx)

	keys := map[string]bool{}
	for _, k := range rfnet.Default().GuidanceKeys {
		keys[k] = true
	}
	stages := []struct {
		name string
		runs int
		f    func() error
	}{
		{"text encoder (1×77 tokens)", iters, encode},
		{fmt.Sprintf("unet, batch 2 (CFG step), %d² latent", size), iters, func() error {
			_, err := m.UNet.Forward(z2, []float64{500, 500}, ctx2, nil)
			return err
		}},
		{"rfnet guidance pass (forward to the last map + backward to the latent)", iters, func() error {
			return guidancePass(m, z, ctx, keys)
		}},
		{fmt.Sprintf("vae decode to %d²", 8*size), iters, func() error { m.DecodeImage(z); return nil }},
	}
	if steps > 0 {
		stages = append(stages, struct {
			name string
			runs int
			f    func() error
		}{fmt.Sprintf("denoise: %d DDIM steps with CFG", steps), 1, func() error {
			s, err := sched.New("ddim", m.Variant.Sched, steps)
			if err != nil {
				return err
			}
			_, err = m.Denoise(s, z, ctx, ctx, 7.5, nil)
			return err
		}})
	}
	var out []stageTiming
	mem, _ := b.(memoryStats)
	for _, s := range stages {
		fmt.Fprintf(os.Stderr, "timing %s\n", s.name)
		if err := s.f(); err != nil { // warm-up: kernel lookups, the allocator's cache, cuBLAS heuristics
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if err := b.Sync(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if mem != nil {
			mem.ResetPeak()
		}
		var ms []float64
		for range s.runs {
			start := time.Now()
			if err := s.f(); err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			if err := b.Sync(); err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		}
		slices.Sort(ms)
		t := stageTiming{Name: s.name, MedianMS: ms[len(ms)/2], MinMS: ms[0], Runs: len(ms)}
		if mem != nil {
			_, peak := mem.MemoryStats()
			t.PeakMiB = float64(peak) / (1 << 20)
		}
		out = append(out, t)
	}
	return out, nil
}

// guidancePass is the shape of RFNet's guidance step: the UNet run with the
// cross-attention maps of the guidance layers kept, a loss on them, and the
// gradient back to the latent.
func guidancePass(m *pipeline.Model, z, ctx *tensor.Tensor, keys map[string]bool) error {
	tape := tensor.NewTape()
	zt := tape.Track(z)
	var maps []*tensor.Tensor
	_, err := m.UNet.Forward(zt, []float64{500}, ctx, func(l unet.Layer, p *tensor.Tensor) bool {
		if keys[l.Key] {
			maps = append(maps, p.Narrow(-1, 1, 2)) // the object's tokens
		}
		return len(maps) == len(keys)
	})
	if err != nil && !errors.Is(err, unet.ErrStopped) {
		return err
	}
	loss := maps[0].Sum()
	for _, p := range maps[1:] {
		loss = loss.Add(p.Sum())
	}
	_, err = tape.Backward(loss, zt)
	return err
}

func printEngineReport(r engineReport) {
	fmt.Printf("model %s (%s), %s, %s, latent %d² (%d×%d), load %.1f s\n", r.Model, r.Weights, r.Device, r.DType, r.Latent, 8*r.Latent, 8*r.Latent, r.LoadS)
	fmt.Printf("%-72s %10s %10s %5s %10s\n", "call", "median ms", "min ms", "runs", "peak MiB")
	for _, t := range r.Timings {
		peak := "-"
		if t.PeakMiB > 0 {
			peak = fmt.Sprintf("%.0f", t.PeakMiB)
		}
		fmt.Printf("%-72s %10.1f %10.1f %5d %10s\n", t.Name, t.MedianMS, t.MinMS, t.Runs, peak)
	}
}
