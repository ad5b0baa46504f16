package main

import (
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
)

// Bad flags are refused before anything is loaded (the weights here do not
// exist, so reaching the loader would give another error). Values that used
// to mean "the default" are refused too.
func TestFlagErrorsComeFirst(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, c := range []struct {
		args  []string
		parts []string
	}{
		{[]string{"--width", "0"}, []string{"--width 0", "multiple of 8"}},
		{[]string{"--height", "-64"}, []string{"--height -64"}},
		{[]string{"--width", "100"}, []string{"--width 100", "multiple of 8"}},
		{[]string{"--steps", "0"}, []string{"--steps 0", "1 or more"}},
		{[]string{"--steps", "-2"}, []string{"--steps -2"}},
		{[]string{"--guidance", "NaN"}, []string{"--guidance NaN", "finite"}},
		{[]string{"--guidance", "Inf"}, []string{"--guidance +Inf", "finite"}},
		{[]string{"--guidance", "-1"}, []string{"--guidance -1"}},
		{[]string{"--llm-timeout", "0s"}, []string{"--llm-timeout 0s", "positive"}},
		{[]string{"--llm-timeout", "-5s"}, []string{"--llm-timeout -5s"}},
		{[]string{"--llm-retries", "-1"}, []string{"--llm-retries -1"}},
		{[]string{"--max-objects", "0"}, []string{"--max-objects 0", "1 or more"}},
		{[]string{"--max-objects", "-3"}, []string{"--max-objects -3"}},
		{[]string{"--out-dir", ""}, []string{"--out-dir is empty"}},
		{[]string{"--out-dir", file}, []string{"--out-dir " + file, "is a file"}},
		{[]string{"--method", "sd", "--out", ""}, []string{"--out is empty"}},
		{[]string{"--method", "sd", "--out", dir}, []string{"--out " + dir, "is a folder"}},
		{[]string{"--method", "sd", "--out", filepath.Join(file, "x.png")}, []string{"cannot create the folder"}},
		{[]string{"--method", "sd", "--save-latents", ""}, []string{"--save-latents is empty"}},
		{[]string{"--method", "sd", "--out", "/dev/null"}, []string{"--out", "character device"}},
		{[]string{"--method", "sd", "--out", filepath.Join(dir, "c.png"), "--save-latents", filepath.Join(dir, "c.png")}, []string{"--out and --save-latents both write"}},
		{[]string{"--method", "sd", "--out", filepath.Join(dir, "c.json")}, []string{"--out and --out's JSON sidecar both write"}},
		{[]string{"--method", "sd", "--plan", file}, []string{"--plan applies to --method rfnet"}},
		{[]string{"--method", "sd", "--out-dir", dir}, []string{"--out-dir applies to --method rfnet"}},
	} {
		args := append([]string{"generate", "--weights", filepath.Join(dir, "no-such-weights"), "--prompt", "a cat", "--quiet"}, c.args...)
		err := run(args)
		if err == nil {
			t.Errorf("%v: no error", c.args)
			continue
		}
		for _, p := range c.parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%v: error %q does not mention %q", c.args, err, p)
			}
		}
		if strings.Contains(err.Error(), "no-such-weights") {
			t.Errorf("%v: the model was looked up before the flags were checked: %v", c.args, err)
		}
	}
}

// FuzzGenerateFlags runs generate's numeric flags through pflag and the
// checks: nothing panics, and whatever is accepted is in range.
func FuzzGenerateFlags(f *testing.F) {
	f.Add("50", "512", "512", "7.5", "60s", "3", "6")
	f.Add("0", "0", "-8", "NaN", "0s", "-1", "0")
	f.Add("1000", "1048576", "8", "Inf", "-1h", "9999999999999999999", "-5")
	f.Add("-2", "100", "65536", "1e309", "1ns", "0", "1")
	f.Fuzz(func(t *testing.T, steps, width, height, guidance, timeout, retries, maxObjects string) {
		fs := pflag.NewFlagSet("generate", pflag.ContinueOnError)
		fs.SetOutput(discard{})
		g := &generateFlags{}
		g.register(fs)
		args := []string{"--steps", steps, "--width", width, "--height", height, "--guidance", guidance,
			"--llm-timeout", timeout, "--llm-retries", retries, "--max-objects", maxObjects}
		if fs.Parse(args) != nil {
			return
		}
		if g.check(fs.Changed) != nil {
			return
		}
		switch {
		case g.steps < 1:
			t.Fatalf("accepted --steps %d", g.steps)
		case g.width < 8 || g.width%8 != 0 || g.width > pipeline.MaxSide, g.height < 8 || g.height%8 != 0 || g.height > pipeline.MaxSide:
			t.Fatalf("accepted %d×%d", g.width, g.height)
		case math.IsNaN(g.guidance) || math.IsInf(g.guidance, 0) || g.guidance < 0:
			t.Fatalf("accepted --guidance %v", g.guidance)
		case g.llm.timeout <= 0 || g.llm.retries < 0 || g.llm.maxObjects < 1:
			t.Fatalf("accepted --llm-timeout %v --llm-retries %d --max-objects %d", g.llm.timeout, g.llm.retries, g.llm.maxObjects)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Paths that are not checkpoints get messages that say what they are: a
// symlink loop used to be "no such file or folder", a pickle "header length
// 328533120 exceeds the format's limit", and a FIFO blocked forever.
func TestBadWeightPaths(t *testing.T) {
	dir := t.TempDir()
	loopA, loopB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Symlink(loopB, loopA)
	os.Symlink(loopA, loopB)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(dir, "gone.safetensors"), dangling)
	ckpt := filepath.Join(dir, "v1-5.ckpt")
	os.WriteFile(ckpt, append([]byte("PK\x03\x04"), make([]byte, 100)...), 0o644)
	cases := map[string][]string{
		loopA:    {"too many levels of symbolic links"},
		dangling: {"symbolic link", "does not exist"},
		ckpt:     {"PyTorch checkpoint", "refuses", "--to_safetensors", "writes a diffusers folder to load instead: pass it as --weights DIR"},
	}
	fifo := filepath.Join(dir, "fifo.safetensors")
	if syscall.Mkfifo(fifo, 0o644) == nil {
		cases[fifo] = []string{"named pipe"}
	}
	for path, parts := range cases {
		done := make(chan error, 1)
		go func() {
			done <- run([]string{"generate", "--method", "sd", "--weights", path, "--tokenizer", fixtures.Path("models", "tiny-sd1", "tokenizer"),
				"--prompt", "x", "--out", filepath.Join(dir, "o.png"), "--quiet"})
		}()
		select {
		case err := <-done:
			for _, p := range append(parts, path) {
				if err == nil || !strings.Contains(err.Error(), p) {
					t.Errorf("%s: error %v, want one mentioning %q", path, err, p)
				}
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: generate hung", path)
		}
	}
}

// A plan file is capped by --max-objects like the LLM's plans, and a plan
// with huge strings gets an error of a readable size.
func TestPlanFiles(t *testing.T) {
	dir := t.TempDir()
	p := &llm.Plan{Version: llm.PlanVersion, Prompt: "a cat, a dog and a bird", Background: "a garden", Objects: []llm.Object{
		{Name: "a cat", Box: [4]float64{10, 10, 100, 100}, Descriptions: []string{"sleeping"}},
		{Name: "a dog", Box: [4]float64{200, 10, 100, 100}, Descriptions: []string{"barking"}},
		{Name: "a bird", Box: [4]float64{400, 10, 100, 100}, Descriptions: []string{"singing"}},
	}}
	plan := filepath.Join(dir, "plan.json")
	if err := p.Write(plan); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := run(rfnetArgs(out, "--plan", plan, "--max-objects", "2", "--steps", "2")); err != nil {
		t.Fatal(err)
	}
	var used llm.Plan
	raw, _ := os.ReadFile(filepath.Join(out, "plan.json"))
	if err := json.Unmarshal(raw, &used); err != nil || len(used.Objects) != 2 || !strings.Contains(strings.Join(used.Notes, "\n"), `dropped "a bird"`) {
		t.Fatalf("plan used: %v %+v", err, used)
	}

	huge := strings.Repeat("a very long name ", 20000) // 340 KB
	p.Objects[0].Name, p.Objects[0].Box = huge, [4]float64{0, 0, 0, 0}
	if err := p.Write(plan); err != nil {
		t.Fatal(err)
	}
	err := run(rfnetArgs(out, "--plan", plan))
	if err == nil || len(err.Error()) > 1000 || !strings.Contains(err.Error(), "no area") {
		t.Fatalf("error of %d bytes: %.300v", len(err.Error()), err)
	}
}

// A single file whose architecture the shapes do not tell says to pass
// --config, and inspect --list still lists its tensors.
func TestInspectListWhenTheModelDoesNotBuild(t *testing.T) {
	r, w, _ := os.Pipe()
	old := os.Stdout
	os.Stdout = w
	read := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); read <- b }() // the list is larger than a pipe holds
	err := run([]string{"inspect", "--weights", fixtures.Path("models", "tiny-sd1.safetensors"), "--list"})
	w.Close()
	os.Stdout = old
	out := <-read
	if err == nil || !strings.Contains(err.Error(), "--config DIR") {
		t.Fatalf("error %v, want one suggesting --config", err)
	}
	if !strings.Contains(string(out), "model.diffusion_model.") {
		t.Fatalf("no tensor list: %.300s", out)
	}
}
