package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// gpuRecordArgs are gpu-record's flags over the sample inputs of testdata/gpu-record.
func gpuRecordArgs(out string, extra ...string) []string {
	in := func(name string) string { return fixtures.Path("gpu-record", name) }
	return append([]string{"gpu-record", "--out", out, "--date", "2026-12-02", "--commit", "abc1234",
		"--gpu", in("gpu.txt"), "--engine", in("engine-sd21-f16.json"),
		"--engine", in("engine-refiner-f16.json"), "--rfnet", in("rfnet-sd21-f16.json"),
		"--torch", in("torch-baseline.json"), "--kernels", in("kernels-bench.txt"), "--parity", in("parity.log"),
		"--rows", in("rows.jsonl"), "--rows", filepath.Join(out, "no-step-wrote-this.jsonl")}, extra...)
}

// The record built from the samples has exactly the documented fields, one
// row per measured call of every input, and passes its own schema check.
func TestGPURecord(t *testing.T) {
	out := t.TempDir()
	stdout := captureStdout(t, func() error { return run(gpuRecordArgs(out)) })
	path := filepath.Join(out, "2026-12-02-nvidia-h200-abc1234.json")
	if strings.TrimSpace(stdout) != path {
		t.Fatalf("printed %q, want %s", stdout, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(fields)); !slices.Equal(keys, []string{"card", "commit", "cublas", "date", "driver", "parity", "rows"}) {
		t.Errorf("fields %v", keys)
	}
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(fields["rows"], &rows); err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if keys := slices.Sorted(maps.Keys(r)); !slices.Equal(keys, slices.Sorted(slices.Values(rowFields))) {
			t.Errorf("row %d: fields %v", i, keys)
		}
	}
	var g gpuRecord
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if err := g.check(); err != nil {
		t.Error(err)
	}
	if g.Card != "NVIDIA H200" || g.Driver != "570.124.06" || g.CUBLAS != "libcublas.so.13" || g.Commit != "abc1234" {
		t.Errorf("record %+v", g)
	}
	if g.Parity != (parityCounts{Passed: 3, Failed: 2, Skipped: 1}) {
		t.Errorf("parity %+v", g.Parity)
	}
	got := map[string]recordRow{}
	for _, r := range g.Rows {
		got[r.Engine+" "+r.Model+" "+r.DType+" "+r.Call] = r
	}
	want := []string{
		"rfnet-native sd21-base f16 text", "rfnet-native sd21-base f16 unet", "rfnet-native sd21-base f16 guidance",
		"rfnet-native sd21-base f16 vae_decode", "rfnet-native sd21-base f16 loop50",
		"rfnet-native sd21-base f16 rfnet_scene2_default", "rfnet-native sd21-base f16 rfnet_scene2_forced",
		"diffusers-eager sd21-base f16 text", "diffusers-eager sd21-base f16 unet", "diffusers-eager sd21-base f16 vae_decode",
		"diffusers-eager sd21-base f16 loop50", "diffusers-eager sd15 f16 attention 16x4096x4096x40",
		"diffusers-eager sd21-base f16 attention 10x4096x4096x64",
		"rfnet-native sd15 f16 attention 16x4096x4096x40", "rfnet-native sd21-base f16 attention 10x4096x77x64",
		"rfnet-native sd21-base f16 attention_bwd 10x4096x4096x64",
		"rfnet-native sd21-base f16 conv2d_bwd_input 1x320x64x64_to320 implicit",
		"rfnet-native sd21-base f16 conv2d_bwd_input 1x320x64x64_to320 im2col",
		"torch-rfnet sd21-base f16 rfnet_scene2_forced", "torch-rfnet sd21-base f16 guidance",
		"diffusers-eager sdxl-refiner f16 unet", "diffusers-eager sdxl-refiner f16 refine15",
		"rfnet-native sdxl-refiner f16 text", "rfnet-native sdxl-refiner f16 unet", "rfnet-native sdxl-refiner f16 refine15",
	}
	if len(g.Rows) != len(want) {
		t.Errorf("%d rows, want %d: %v", len(g.Rows), len(want), slices.Sorted(maps.Keys(got)))
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("no row %q", k)
		}
	}
	// The guidance pass as the runs run it: the replayed one, not the eager.
	if r := got["rfnet-native sd21-base f16 guidance"]; r.MS != 18.4 || r.TFLOPS != nil {
		t.Errorf("guidance row %+v", r)
	}
	if r := got["rfnet-native sd21-base f16 rfnet_scene2_forced"]; r.MS != 7600 || r.TFLOPS != nil || r.PeakGiB == nil || *r.PeakGiB < 7.1 || *r.PeakGiB > 7.2 {
		t.Errorf("scene row %+v", r)
	}
	if r := got["rfnet-native sd15 f16 attention 16x4096x4096x40"]; r.MS < 7.84 || r.MS > 7.85 || r.TFLOPS == nil || *r.TFLOPS != 54.8 {
		t.Errorf("kernel row %+v", r)
	}
	if r := got["rfnet-native sd21-base f16 conv2d_bwd_input 1x320x64x64_to320 implicit"]; r.MS != 0.21 || r.TFLOPS == nil || *r.TFLOPS != 180 {
		t.Errorf("convolution row %+v", r)
	}
}

// A bad appended row fails the record with the file and line; without
// --commit a binary not built by gpu-check.sh says so.
func TestGPURecordRejectsBadInput(t *testing.T) {
	out := t.TempDir()
	bad := filepath.Join(out, "rows.jsonl")
	for _, c := range []struct{ line, want string }{
		{`{"engine": "torch-rfnet", "model": "sd21-base", "dtype": "f16", "call": "guidance", "ms": 48.2}`, "rows.jsonl:2: fields"},
		{`{"engine": "torch", "model": "sd21-base", "dtype": "f16", "call": "guidance", "ms": 48.2, "tflops": null, "peak_gib": null}`, `rows.jsonl:2: engine "torch"`},
		{`{"engine": "torch-rfnet", "model": "sd21-base", "dtype": "f16", "call": "guidance", "ms": 0, "tflops": null, "peak_gib": null}`, "rows.jsonl:2: ms 0"},
		{`not json`, "rows.jsonl:2:"},
	} {
		good := `{"engine": "torch-rfnet", "model": "sd15", "dtype": "f32", "call": "unet", "ms": 1, "tflops": 2, "peak_gib": null}`
		if err := os.WriteFile(bad, []byte(good+"\n"+c.line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := run(gpuRecordArgs(out, "--rows", bad))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one with %q", c.line, err, c.want)
		}
	}
	args := gpuRecordArgs(out)
	i := slices.Index(args, "--commit")
	if err := run(slices.Delete(args, i, i+2)); err == nil || !strings.Contains(err.Error(), "--commit") {
		t.Errorf("without a commit: err = %v", err)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
