package main

import (
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/internal/fixtures"
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

// version names the version and the backends built in.
func TestVersion(t *testing.T) {
	out := captureStdout(t, func() error { return run([]string{"version"}) })
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != "rfnet-native "+version || lines[1] != backendsLine(cuda.Compiled) {
		t.Fatalf("version printed %q", out)
	}
	if !strings.Contains(backendsLine(false), "make cuda") || !strings.Contains(backendsLine(true), "cuda (kernels") {
		t.Fatalf("backend lines %q, %q", backendsLine(false), backendsLine(true))
	}
}
