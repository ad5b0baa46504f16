package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
)

// buildCommit is the commit the binary was built from, set by
// scripts/gpu-check.sh build (-ldflags -X main.buildCommit=...): the GPU
// machine gets the working tree without .git.
var buildCommit string

// gpuRecord is the machine-readable record of one GPU run
// (docs/gpu-runs/DATE-CARD-COMMIT.json; docs/benchmarks.md, "GPU run records").
type gpuRecord struct {
	Date   string       `json:"date"`
	Commit string       `json:"commit"`
	Card   string       `json:"card"`
	Driver string       `json:"driver"`
	CUBLAS string       `json:"cublas"`
	Parity parityCounts `json:"parity"`
	Rows   []recordRow  `json:"rows"`
}

// parityCounts are the parity tests' outcomes, subtests included.
type parityCounts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// recordRow is one measured call. TFLOPS and PeakGiB are null where the
// measurement has none.
type recordRow struct {
	Engine  string   `json:"engine"`
	Model   string   `json:"model"`
	DType   string   `json:"dtype"`
	Call    string   `json:"call"`
	MS      float64  `json:"ms"`
	TFLOPS  *float64 `json:"tflops"`
	PeakGiB *float64 `json:"peak_gib"`
}

// The values a row may hold; kernel rows have calls "attention BxNxMxD" or
// "attention_bwd BxNxMxD".
var (
	recordEngines = []string{"rfnet-native", "diffusers-eager", "torch-rfnet"}
	recordModels  = []string{"sd15", "sd21-base", "sdxl-refiner"}
	recordCalls   = []string{"text", "unet", "guidance", "vae_decode", "loop50", "rfnet_scene2_forced", "rfnet_scene2_default", "refine15"}
	kernelCall    = regexp.MustCompile(`^(attention(_bwd)? \d+x\d+x\d+x\d+|conv2d_bwd_input \d+x\d+x\d+x\d+_to\d+ (implicit|im2col))$`)
	rowFields     = []string{"engine", "model", "dtype", "call", "ms", "tflops", "peak_gib"}
)

// check is the row's schema.
func (r recordRow) check() error {
	switch {
	case !slices.Contains(recordEngines, r.Engine):
		return fmt.Errorf("engine %q: want one of %s", r.Engine, strings.Join(recordEngines, ", "))
	case !slices.Contains(recordModels, r.Model):
		return fmt.Errorf("model %q: want one of %s", r.Model, strings.Join(recordModels, ", "))
	case !slices.Contains([]string{"f32", "f16", "bf16"}, r.DType):
		return fmt.Errorf("dtype %q: want f32, f16 or bf16", r.DType)
	case !slices.Contains(recordCalls, r.Call) && !kernelCall.MatchString(r.Call):
		return fmt.Errorf("call %q: want one of %s, \"attention[_bwd] BxNxMxD\" or \"conv2d_bwd_input NxCxHxW_toO implicit|im2col\"", r.Call, strings.Join(recordCalls, ", "))
	case !(r.MS > 0) || math.IsInf(r.MS, 0):
		return fmt.Errorf("ms %v: want a positive number", r.MS)
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"tflops", r.TFLOPS}, {"peak_gib", r.PeakGiB}} {
		if f.v != nil && (!(*f.v >= 0) || math.IsInf(*f.v, 0)) {
			return fmt.Errorf("%s %v: want null or a number, 0 or more", f.name, *f.v)
		}
	}
	return nil
}

// check is the record's schema: every field filled, every row valid.
func (g gpuRecord) check() error {
	if _, err := time.Parse(time.DateOnly, g.Date); err != nil {
		return fmt.Errorf("date %q: want YYYY-MM-DD", g.Date)
	}
	for _, f := range []struct{ name, v string }{{"commit", g.Commit}, {"card", g.Card}, {"driver", g.Driver}, {"cublas", g.CUBLAS}} {
		if f.v == "" {
			return fmt.Errorf("%s is empty", f.name)
		}
	}
	for i, r := range g.Rows {
		if err := r.check(); err != nil {
			return fmt.Errorf("row %d (%s %s %s %s): %w", i, r.Engine, r.Model, r.DType, r.Call, err)
		}
	}
	return nil
}

// fileName is DATE-CARD-COMMIT.json, the card in lower case with dashes.
func (g gpuRecord) fileName() string {
	card := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(g.Card), "-"), "-")
	return fmt.Sprintf("%s-%s-%s.json", g.Date, card, g.Commit)
}

func setupGPURecord(fs *pflag.FlagSet) func() error {
	outDir := fs.String("out", "docs/gpu-runs", "folder of the record, written as DATE-CARD-COMMIT.json")
	date := fs.String("date", "", "the run's date, YYYY-MM-DD (default: today, UTC)")
	commit := fs.String("commit", "", "the commit measured (default: the one this binary was built from by scripts/gpu-check.sh build)")
	gpu := fs.String("gpu", "", "nvidia-smi --query-gpu=name,driver_version,... --format=csv,noheader output: the card and its driver")
	engines := fs.StringArray("engine", nil, "bench-engine --json report (repeatable)")
	scenes := fs.StringArray("rfnet", nil, "bench-engine --rfnet --json report (repeatable)")
	torch := fs.String("torch", "", "scripts/torch_baseline.py's JSON output (engine diffusers-eager)")
	kernels := fs.String("kernels", "", "the CUDA kernel benchmarks' output (go test -bench): the attention and convolution-gradient rows")
	parity := fs.StringArray("parity", nil, "a parity test binary's -test.v output (repeatable): counts its --- PASS/FAIL/SKIP lines")
	rows := fs.StringArray("rows", nil, "JSON-lines file of rows, one object with exactly the row's fields a line (repeatable; missing files are none)")
	return func() error {
		g := gpuRecord{Date: *date, Commit: *commit, Rows: []recordRow{}}
		if g.Date == "" {
			g.Date = time.Now().UTC().Format(time.DateOnly)
		}
		if g.Commit == "" {
			if g.Commit = buildCommit; g.Commit == "" {
				return errors.New("--commit is required: this binary was not built by scripts/gpu-check.sh build, which writes its commit into it")
			}
		}
		var err error
		if g.Card, g.Driver, err = readGPU(*gpu); err != nil {
			return err
		}
		for _, p := range *engines {
			rs, cublas, err := engineRows(p)
			if err != nil {
				return err
			}
			g.Rows = append(g.Rows, rs...)
			if g.CUBLAS == "" {
				g.CUBLAS = cublas
			}
		}
		for _, p := range *scenes {
			rs, err := sceneRows(p)
			if err != nil {
				return err
			}
			g.Rows = append(g.Rows, rs...)
		}
		if g.CUBLAS == "" {
			g.CUBLAS = "unknown (no bench-engine report)"
		}
		if *torch != "" {
			rs, err := torchRows(*torch)
			if err != nil {
				return err
			}
			g.Rows = append(g.Rows, rs...)
		}
		if *kernels != "" {
			rs, err := kernelRows(*kernels)
			if err != nil {
				return err
			}
			g.Rows = append(g.Rows, rs...)
		}
		for _, p := range *rows {
			rs, err := readRows(p)
			if err != nil {
				return err
			}
			g.Rows = append(g.Rows, rs...)
		}
		for _, p := range *parity {
			if err := countParity(p, &g.Parity); err != nil {
				return err
			}
		}
		if err := g.check(); err != nil {
			return fmt.Errorf("gpu-record: %w", err)
		}
		raw, _ := json.MarshalIndent(g, "", "  ")
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			return err
		}
		path := filepath.Join(*outDir, g.fileName())
		if err := atomicfile.WriteBytes(path, append(raw, '\n')); err != nil {
			return err
		}
		fmt.Println(path)
		return nil
	}
}

// readGPU reads nvidia-smi's CSV line: name, driver_version, ... A missing
// file or line (no nvidia-smi: the emulator) makes an unnamed card.
func readGPU(path string) (card, driver string, err error) {
	if path == "" {
		return "unknown", "unknown", nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("--gpu: %w", err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	fields := strings.Split(line, ",")
	if len(fields) < 2 {
		return "unknown", "unknown", nil
	}
	return strings.TrimSpace(fields[0]), strings.TrimSpace(fields[1]), nil
}

// recordModel is the record's name of bench-engine's --model (sd21 is 2.1-base there).
func recordModel(m string) string {
	if m == "sd21" {
		return "sd21-base"
	}
	return m
}

// readJSON decodes a report file, naming it in the error.
func readJSON(flag, path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--%s: %w", flag, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("--%s %s: %w", flag, path, err)
	}
	return nil
}

// replayedGuidance is bench-engine's name of the replayed guidance pass.
const replayedGuidance = "graph replay of the rfnet guidance pass"

// engineCalls map bench-engine's call names (by prefix) to the record's calls.
var engineCalls = []struct{ prefix, call string }{
	{"text encoder", "text"}, {"unet, batch 2", "unet"},
	// The guidance pass as the runs run it: replayed where the backend
	// captures (engineRows then leaves the eager one out), else eager.
	{replayedGuidance, "guidance"}, {"rfnet guidance pass, eager", "guidance"},
	{"vae decode", "vae_decode"}, {"denoise: 50 ", "loop50"},
	// bench-engine --refiner's (model sdxl-refiner)
	{"refiner text encoder", "text"}, {"refiner unet, batch 2", "unet"}, {"refine: 15 of 50 ", "refine15"},
}

// engineRows are a bench-engine report's calls, and the GEMM its device
// named (the part of the device's name after its last ", ").
func engineRows(path string) ([]recordRow, string, error) {
	var r engineReport
	if err := readJSON("engine", path, &r); err != nil {
		return nil, "", err
	}
	replayed := slices.ContainsFunc(r.Timings, func(t stageTiming) bool { return strings.HasPrefix(t.Name, replayedGuidance) })
	var rows []recordRow
	for _, t := range r.Timings {
		for _, c := range engineCalls {
			if c.call == "guidance" && replayed != (c.prefix == replayedGuidance) {
				continue
			}
			if strings.HasPrefix(t.Name, c.prefix) {
				rows = append(rows, recordRow{Engine: "rfnet-native", Model: recordModel(r.Model), DType: r.DType, Call: c.call,
					MS: t.MedianMS, TFLOPS: positive(t.TFLOPS), PeakGiB: positive(t.PeakMiB / 1024)})
			}
		}
	}
	cublas := ""
	if i := strings.LastIndex(r.Device, ", "); i >= 0 {
		cublas = r.Device[i+2:]
	}
	return rows, cublas, nil
}

// sceneRows are the two-object scenes of a bench-engine --rfnet report.
func sceneRows(path string) ([]recordRow, error) {
	var r rfnetReport
	if err := readJSON("rfnet", path, &r); err != nil {
		return nil, err
	}
	var rows []recordRow
	for _, s := range r.Scenes {
		if s.Objects != 2 {
			continue
		}
		var peak *float64
		if r.Peak == peakDevice {
			peak = positive(s.PeakMiB / 1024)
		}
		rows = append(rows, recordRow{Engine: "rfnet-native", Model: recordModel(r.Model), DType: r.DType,
			Call: "rfnet_scene2_" + s.Setting, MS: s.SceneMS, PeakGiB: peak})
	}
	return rows, nil
}

// torchCalls map torch_baseline.py's model rows (MODEL/DTYPE/CALL) to the record's calls.
var torchCalls = map[string]string{"text": "text", "unet": "unet", "vae": "vae_decode", "denoise50": "loop50"}

// torchRows are torch_baseline.py's model rows and its attention rows
// (attention/DTYPE/BxNxD, self-attention), as engine diffusers-eager.
func torchRows(path string) ([]recordRow, error) {
	var f struct {
		Rows []struct {
			Name     string   `json:"name"`
			MedianMS float64  `json:"median_ms"`
			TFLOPS   *float64 `json:"tflops"` // FLOPs / ms / 1e9: TFLOP/s
		} `json:"rows"`
	}
	if err := readJSON("torch", path, &f); err != nil {
		return nil, err
	}
	var rows []recordRow
	for _, r := range f.Rows {
		parts := strings.Split(r.Name, "/")
		if len(parts) != 3 {
			continue
		}
		if call, ok := torchCalls[parts[2]]; ok {
			rows = append(rows, recordRow{Engine: "diffusers-eager", Model: recordModel(parts[0]), DType: parts[1], Call: call, MS: r.MedianMS})
			continue
		}
		var b, n, d int
		if parts[0] == "attention" && scanShape(parts[2], &b, &n, &d) {
			var tflops *float64
			if r.TFLOPS != nil {
				tflops = positive(*r.TFLOPS)
			}
			rows = append(rows, recordRow{Engine: "diffusers-eager", Model: attentionModel(d), DType: parts[1],
				Call: fmt.Sprintf("attention %dx%dx%dx%d", b, n, n, d), MS: r.MedianMS, TFLOPS: tflops})
		}
	}
	return rows, nil
}

// scanShape reads BxNxD.
func scanShape(s string, dims ...*int) bool {
	parts := strings.Split(s, "x")
	if len(parts) != len(dims) {
		return false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return false
		}
		*dims[i] = n
	}
	return true
}

// attentionModel is the model an attention shape comes from: SD 2.x's heads
// are 64 wide, SD 1.x's 40, 80 and 160.
func attentionModel(headDim int) string {
	if headDim == 64 {
		return "sd21-base"
	}
	return "sd15"
}

// kernelRows are BenchmarkAttention's rows of the kernel the engine picks,
// BenchmarkAttention/DTYPE/picked/BxNxMxD-P  RUNS  NS ns/op  T TFLOP/s,
// BenchmarkAttentionBackward's, BenchmarkAttentionBackward/DTYPE/BxNxMxD-P
// (calls "attention_bwd BxNxMxD"), and BenchmarkConv2dBackwardInput's,
// BenchmarkConv2dBackwardInput/DTYPE/NxCxHxW_toO/PATH-P (calls
// "conv2d_bwd_input NxCxHxW_toO PATH", model sd21-base: SD 1.5's UNet has
// the same convolutions).
func kernelRows(path string) ([]recordRow, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--kernels: %w", err)
	}
	var rows []recordRow
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "ns/op" {
			continue
		}
		name := strings.Split(f[0], "/")
		ns, err := strconv.ParseFloat(f[2], 64)
		bad := func() error { return fmt.Errorf("--kernels %s: cannot read %q", path, line) }
		var row recordRow
		switch {
		case name[0] == "BenchmarkAttention" && len(name) == 4 && name[2] == "picked",
			name[0] == "BenchmarkAttentionBackward" && len(name) == 3:
			call, last := "attention ", 3
			if name[0] == "BenchmarkAttentionBackward" {
				call, last = "attention_bwd ", 2
			}
			shape, _, _ := strings.Cut(name[last], "-")
			var b, n, m, d int
			if !scanShape(shape, &b, &n, &m, &d) || err != nil {
				return nil, bad()
			}
			row = recordRow{Engine: "rfnet-native", Model: attentionModel(d), DType: name[1], Call: call + shape, MS: ns / 1e6}
		case name[0] == "BenchmarkConv2dBackwardInput" && len(name) == 4:
			pathName, _, _ := strings.Cut(name[3], "-")
			row = recordRow{Engine: "rfnet-native", Model: "sd21-base", DType: name[1], Call: "conv2d_bwd_input " + name[2] + " " + pathName, MS: ns / 1e6}
			if err != nil || !kernelCall.MatchString(row.Call) {
				return nil, bad()
			}
		default:
			continue
		}
		for i := 4; i+1 < len(f); i += 2 {
			if f[i+1] == "TFLOP/s" {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					row.TFLOPS = positive(v)
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// readRows reads a JSON-lines file of rows that any step of gpu-check.sh
// may append to ($RFNET_GPU_ROWS): one object a line with exactly the row's
// fields. A file that is not there holds none (no step wrote to it).
func readRows(path string) ([]recordRow, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--rows: %w", err)
	}
	var rows []recordRow
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(line, &fields); err != nil {
			return nil, fmt.Errorf("--rows %s:%d: %w", path, n, err)
		}
		var keys []string
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := slices.Sorted(slices.Values(rowFields)); !slices.Equal(keys, want) {
			return nil, fmt.Errorf("--rows %s:%d: fields %v, want exactly %v", path, n, keys, rowFields)
		}
		var r recordRow
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("--rows %s:%d: %w", path, n, err)
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("--rows %s:%d: %w", path, n, err)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

// parityLine is a test's outcome in go test -v output, subtests indented.
var parityLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): `)

// countParity adds a -test.v log's outcomes to c.
func countParity(path string, c *parityCounts) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--parity: %w", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		switch m := parityLine.FindStringSubmatch(line); {
		case m == nil:
		case m[1] == "PASS":
			c.Passed++
		case m[1] == "FAIL":
			c.Failed++
		default:
			c.Skipped++
		}
	}
	return nil
}

// positive is v, or nil (JSON null) when it is not above 0: not measured.
func positive(v float64) *float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
