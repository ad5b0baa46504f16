package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

// For an SD 2.x model tokenize prints diffusers' ids, and open_clip's beside
// them where "!" makes them differ; --tokenizer-split swaps the two.
func TestTokenizeShowsTheOtherSplit(t *testing.T) {
	type result struct {
		Split      string
		IDs        []int32
		Tokens     []string
		OtherSplit *struct {
			Split  string
			IDs    []int32
			Tokens []string
		} `json:"other_split"`
	}
	tokenize := func(args ...string) result {
		out := captureStdout(t, func() error {
			return run(append([]string{"tokenize", "-weights", fixtures.Path("models", "tiny-sd2"), "-prompt", "wow!!"}, args...))
		})
		var r result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err, out)
		}
		return r
	}
	def := tokenize()
	if def.Split != "diffusers" || !slices.Equal(def.Tokens[4:6], []string{"!", "!"}) || def.OtherSplit == nil ||
		def.OtherSplit.Split != "open-clip" || !slices.Equal(def.OtherSplit.Tokens[4:6], []string{"!", "!</w>"}) {
		t.Fatalf("default split: %+v", def)
	}
	open := tokenize("--tokenizer-split", "open-clip")
	if open.Split != "open-clip" || !slices.Equal(open.IDs, def.OtherSplit.IDs) || open.OtherSplit == nil || !slices.Equal(open.OtherSplit.IDs, def.IDs) {
		t.Fatalf("--tokenizer-split open-clip: %+v", open)
	}
	if same := captureStdout(t, func() error {
		return run([]string{"tokenize", "-weights", fixtures.Path("models", "tiny-sd2"), "-prompt", "a lion"})
	}); strings.Contains(same, "other_split") {
		t.Fatalf("a prompt both splits agree on: %s", same)
	}
}

// The flag reaches the load options of every command that loads a
// checkpoint, and a wrong name is refused before anything is loaded.
func TestTokenizerSplitFlag(t *testing.T) {
	m := modelFlags{weights: fixtures.Path("models", "tiny-sd2"), tokenizerSplit: "open-clip"}
	_, o, err := m.options(context.Background(), cpu.New(), tensor.Float32)
	if err != nil || o.TokenizerSplit != clip.SplitOpenCLIP {
		t.Fatalf("options: %+v, %v", o, err)
	}
	m.tokenizerSplit = "openclip"
	if _, _, err := m.options(context.Background(), cpu.New(), tensor.Float32); err == nil || !strings.Contains(err.Error(), `--tokenizer-split: clip: tokenizer split "openclip"`) {
		t.Fatalf("a wrong name: %v", err)
	}
	err = run([]string{"tokenize", "-weights", fixtures.Path("models", "tiny-sd2"), "-prompt", "x", "--tokenizer-split", "OpenCLIP"})
	if err == nil || !strings.Contains(err.Error(), "--tokenizer-split") {
		t.Fatalf("tokenize with a wrong name: %v", err)
	}
}
