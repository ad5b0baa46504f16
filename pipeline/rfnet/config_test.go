package rfnet

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Every float of the configuration is finite and in range, and every size
// explicit: a NaN guidance scale used to run into a black image.
func TestConfigRefusesNonFiniteAndOutOfRange(t *testing.T) {
	for _, c := range []struct {
		key  string
		edit func(*Config)
	}{
		{"guidance_scale", func(c *Config) { c.Guidance = math.NaN() }},
		{"guidance_scale", func(c *Config) { c.Guidance = math.Inf(1) }},
		{"loss_scale", func(c *Config) { c.LossScale = math.Inf(-1) }},
		{"fg_weight", func(c *Config) { c.FgWeight = -1 }},
		{"mask_gaussian_sigma", func(c *Config) { c.MaskSigma = math.NaN() }},
		{"ref_ca_scale", func(c *Config) { c.RefScale = math.NaN() }},
		{"so_floor_padding", func(c *Config) { c.SOFloorPadding = 2 }},
		{"max_iter[3]", func(c *Config) { c.MaxIter[3] = -1 }},
		{"width 0", func(c *Config) { c.Width = 0 }},
		{"height 100", func(c *Config) { c.Height = 100 }},
		{"max_index_step", func(c *Config) { c.MaxIndexStep = -2 }},
		{"mask_gaussian_sigma", func(c *Config) { c.MaskSigma = 1e18 }}, // used to panic in makeslice, or hang
		{"ref_ca_eps", func(c *Config) { c.RefEps = 0 }},                // used to fail mid-run with a NaN loss
		{"max_iter[0]", func(c *Config) { c.MaxIter[0] = 1000000 }},
	} {
		cfg := Default()
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: error %v, want one naming it", c.key, err)
		}
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	// From a file too: JSON has no NaN, but 1e999 is read as an error, not +Inf.
	path := filepath.Join(t.TempDir(), "cfg.json")
	os.WriteFile(path, []byte(`{"guidance_scale": 1e999}`), 0o644)
	if _, err := LoadConfig(path); err == nil {
		t.Fatal("guidance_scale 1e999 was accepted")
	}
}

// The keys renamed from guidance_* (see renamedKeys) still read under their
// old names, in an rfnet config file and in the config of a run.json (whose
// model reads into ModelInfo); a key given under both names is refused with
// both named.
func TestConfigReadsRenamedKeys(t *testing.T) {
	const old = `{"guidance_constraint": false, "guidance_attn_keys": ["up.1.0.0", "up.1.1.0"]}`
	check := func(what string, c Config) {
		t.Helper()
		if c.ReferenceConstraint || strings.Join(c.SteeringKeys, ",") != "up.1.0.0,up.1.1.0" {
			t.Errorf("%s: reference_constraint %v, steering_attn_keys %v; want false and the file's two keys", what, c.ReferenceConstraint, c.SteeringKeys)
		}
		if c.Steps != Default().Steps || !c.Suppression {
			t.Errorf("%s: the keys the file lacks lost their defaults: %+v", what, c)
		}
	}
	path := filepath.Join(t.TempDir(), "cfg.json")
	os.WriteFile(path, []byte(old), 0o644)
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	check("rfnet config", c)

	run := RunInfo{Config: Default()}
	if err := json.Unmarshal([]byte(`{"prompt": "p", "config": `+old+`, "model": {"weights": "w", "model_type": "sd21-base"}}`), &run); err != nil {
		t.Fatal(err)
	}
	check("run.json", run.Config)
	if run.Model.Weights != "w" || run.Model.ModelType != "sd21-base" {
		t.Errorf("run.json: model %+v, want the file's weights and model_type", run.Model)
	}

	os.WriteFile(path, []byte(`{"guidance_attn_keys": ["up.1.0.0"], "steering_attn_keys": ["mid.0.0.0"]}`), 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "steering_attn_keys") || !strings.Contains(err.Error(), "guidance_attn_keys") {
		t.Errorf("both names of a key: error %v, want one naming both", err)
	}
	os.WriteFile(path, []byte(`{"guidance_attn_key": ["up.1.0.0"]}`), 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "guidance_attn_key") {
		t.Errorf("an unknown key: error %v, want one naming it", err)
	}
}

// Every key of Config has one line of explanation, and --print-config's
// output is JSON that LoadConfig reads back to the same configuration.
func TestExplainedConfigRoundTrips(t *testing.T) {
	keys := configKeys()
	for _, k := range keys {
		if configExplain[k] == "" || strings.Contains(configExplain[k], "\n") {
			t.Errorf("key %s: explanation %q, want one line", k, configExplain[k])
		}
	}
	if len(configExplain) != len(keys) {
		t.Errorf("%d explanations for %d keys", len(configExplain), len(keys))
	}
	c := Default()
	c.FrozenStepRatio, c.MaxIter, c.OverallLossThreshold, c.ReferenceConstraint = 0.3, []int{2, 1}, 0, false
	out, err := ExplainedConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Config  map[string]any    `json:"config"`
		Explain map[string]string `json:"explain"`
	}
	if err := json.Unmarshal(out, &parsed); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(parsed.Config) != len(keys) || len(parsed.Explain) != len(keys) {
		t.Errorf("%d config keys and %d explanations, want %d each", len(parsed.Config), len(parsed.Explain), len(keys))
	}
	path := filepath.Join(t.TempDir(), "printed.json")
	os.WriteFile(path, out, 0o644)
	back, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("read back %+v\nwant %+v", back, c)
	}
	// A file with "config" beside settings is not printed output: the key is refused.
	os.WriteFile(path, []byte(`{"config": {}, "loss_scale": 2}`), 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "config") {
		t.Errorf("config beside a setting: error %v, want one naming it", err)
	}
}

// A run.json or bench.json written before sdxl_step_ratio existed reads with
// its default, so an earlier benchmark run's settings equal this version's.
func TestConfigAddedKeysReadAsDefaults(t *testing.T) {
	var c Config
	if err := json.Unmarshal([]byte(`{"num_inference_steps": 50}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.SDXLStepRatio != Default().SDXLStepRatio {
		t.Fatalf("sdxl_step_ratio %v without the key, want the default %v", c.SDXLStepRatio, Default().SDXLStepRatio)
	}
	if err := json.Unmarshal([]byte(`{"sdxl_step_ratio": 0.5}`), &c); err != nil || c.SDXLStepRatio != 0.5 {
		t.Fatalf("sdxl_step_ratio 0.5: %v, %v", c.SDXLStepRatio, err)
	}
}

// A run.json or bench.json without batch_objects ran the objects one by one
// (the key came off by default): it reads as false even over Default(), so
// resuming such a benchmark with --batch-objects=false matches it; a config
// file or a job's settings without the key keep the default, the batch.
func TestConfigBatchObjectsAddedKey(t *testing.T) {
	c := Default()
	if !c.BatchObjects {
		t.Fatal("batch_objects is off by default")
	}
	if err := json.Unmarshal([]byte(`{"num_inference_steps": 50}`), &c); err != nil || c.BatchObjects {
		t.Fatalf("a recorded config without batch_objects: %v, %v, want false", c.BatchObjects, err)
	}
	if err := json.Unmarshal([]byte(`{"batch_objects": true}`), &c); err != nil || !c.BatchObjects {
		t.Fatalf("batch_objects true: %v, %v", c.BatchObjects, err)
	}
	p, err := ParseConfig([]byte(`{"num_inference_steps": 30}`))
	if err != nil || !p.BatchObjects {
		t.Fatalf("settings without batch_objects: %v, %v, want the default true", p.BatchObjects, err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"num_inference_steps": 30}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := LoadConfig(path); err != nil || !l.BatchObjects {
		t.Fatalf("config file without batch_objects: %v, %v, want the default true", l.BatchObjects, err)
	}
}
