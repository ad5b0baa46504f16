package main

import (
	"slices"
	"testing"

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
