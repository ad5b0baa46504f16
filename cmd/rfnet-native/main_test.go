package main

import (
	"encoding/json"
	"io"
	"os"

	"slices"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"

	"github.com/spf13/pflag"
)

func TestLongFlags(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("weights", "", "")
	fs.String("prompt", "", "")
	fs.BoolP("verbose", "v", false, "")
	got := longFlags([]string{"-weights", "sd21.safetensors", "-prompt=a cat", "-v", "--list", "-unknown", "--", "-weights"}, fs)
	want := []string{"--weights", "sd21.safetensors", "--prompt=a cat", "-v", "--list", "-unknown", "--", "-weights"}
	if !slices.Equal(got, want) {
		t.Fatalf("longFlags = %q, want %q", got, want)
	}
}

func TestRunUnknownCommand(t *testing.T) {
	if err := run([]string{"frobnicate"}); err == nil {
		t.Fatal("an unknown command must fail")
	}
}

// captureStdout runs f and returns what it printed.
func captureStdout(t *testing.T, f func() error) string {
	t.Helper()
	r, w, _ := os.Pipe()
	old := os.Stdout
	os.Stdout = w
	err := f()
	w.Close()
	os.Stdout = old
	out, _ := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestInspectAndTokenize(t *testing.T) {
	out := captureStdout(t, func() error {
		return run([]string{"inspect", "-weights", fixtures.Path("models", "tiny-sd2-v"), "-json"})
	})
	var s struct {
		Family, Prediction, Layout string
		Components                 []struct{ Parameters int64 }
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err, out)
	}
	if s.Family != "sd2" || s.Prediction != "v_prediction" || s.Layout != "diffusers" || len(s.Components) != 3 || s.Components[1].Parameters == 0 {
		t.Fatalf("inspect: %+v", s)
	}
	out = captureStdout(t, func() error {
		return run([]string{"tokenize", "-weights", fixtures.Path("models", "tiny-sd1"), "-prompt", "A Lion!"})
	})
	var tok struct {
		IDs    []int32
		Tokens []string
	}
	if err := json.Unmarshal([]byte(out), &tok); err != nil || len(tok.IDs) != 77 || tok.Tokens[2] != "lion</w>" {
		t.Fatalf("tokenize: %v %s", err, out)
	}
}
