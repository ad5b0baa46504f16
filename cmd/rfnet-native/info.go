package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
)

func setupInfo(fs *pflag.FlagSet) func() error {
	asJSON := fs.Bool("json", false, "print JSON: prompt, negative_prompt, parameters (the keys in the text's order) and the text as stored")
	return func() error {
		if fs.NArg() != 1 {
			return errors.New("info: want one image: rfnet-native info IMAGE.png [--json]")
		}
		path := fs.Arg(0)
		text, err := readParameters(path)
		if err != nil {
			return err
		}
		p := infotext.Parse(text)
		if *asJSON {
			out, err := json.MarshalIndent(struct {
				Prompt         string          `json:"prompt"`
				NegativePrompt string          `json:"negative_prompt"`
				Parameters     infotext.Fields `json:"parameters"`
				Text           string          `json:"text"`
			}{p.Prompt, p.NegativePrompt, p.Fields, text}, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Printf("%s\n", out)
			return err
		}
		return printParameters(os.Stdout, p)
	}
}

// readParameters is the "parameters" text chunk of the PNG at path.
func readParameters(path string) (string, error) {
	chunks, err := pipeline.ReadPNGText(path)
	if err != nil {
		return "", fmt.Errorf("info: %w", err)
	}
	text, ok := chunks["parameters"]
	if !ok {
		has := "it has no text chunks"
		if len(chunks) > 0 {
			has = "its text chunks: " + strings.Join(slices.Sorted(maps.Keys(chunks)), ", ")
		}
		return "", fmt.Errorf("info: %s has no \"parameters\" text chunk (%s)", path, has)
	}
	return text, nil
}

// printParameters prints the prompt, the negative prompt when there is one,
// and every pair, one a line; the lines after the first of a value that has
// several are indented.
func printParameters(w io.Writer, p infotext.Parsed) error {
	lines := []infotext.Field{{Key: "Prompt", Value: p.Prompt}}
	if p.NegativePrompt != "" {
		lines = append(lines, infotext.Field{Key: "Negative prompt", Value: p.NegativePrompt})
	}
	var b strings.Builder
	for _, f := range append(lines, p.Fields...) {
		fmt.Fprintf(&b, "%s: %s\n", f.Key, strings.ReplaceAll(f.Value, "\n", "\n  "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
