package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/weights"
)

func setupInspect(fs *pflag.FlagSet) func() error {
	path := fs.String("weights", "", "a .safetensors file")
	list := fs.Bool("list", false, "print every tensor (name, dtype, shape)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	return func() error {
		if *path == "" {
			return errors.New("inspect: --weights is required (a .safetensors file)")
		}
		f, err := weights.Open(*path)
		if err != nil {
			return err
		}
		defer f.Close()
		s := summarize(f)
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(s)
		}
		fmt.Printf("file:       %s\ntensors:    %d\nparameters: %d\n", s.File, s.Tensors, s.Parameters)
		for _, g := range s.Groups {
			fmt.Printf("  %-28s %6d tensors %14d parameters  %s\n", g.Prefix, g.Tensors, g.Parameters, strings.Join(g.DTypes, ","))
		}
		if *list {
			for _, name := range f.Names() {
				info, _ := f.Info(name)
				fmt.Printf("%s %s %v\n", name, info.DType, info.Shape)
			}
		}
		return nil
	}
}

// summary is what inspect prints: totals, and per top-level prefix group.
type summary struct {
	File       string  `json:"file"`
	Tensors    int     `json:"tensors"`
	Parameters int64   `json:"parameters"`
	Groups     []group `json:"groups"`
}

type group struct {
	Prefix     string   `json:"prefix"`
	Tensors    int      `json:"tensors"`
	Parameters int64    `json:"parameters"`
	DTypes     []string `json:"dtypes"`
}

// groupOf is the part of a tensor name that says which model it belongs to:
// the first component, or the first two for the single-file prefixes
// (model.diffusion_model, first_stage_model, cond_stage_model.transformer, ...).
func groupOf(name string) string {
	parts := strings.SplitN(name, ".", 3)
	if len(parts) >= 2 && (parts[0] == "model" || parts[0] == "cond_stage_model") {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

func summarize(f *weights.File) summary {
	s := summary{File: f.Path()}
	byPrefix := map[string]*group{}
	dtypes := map[string]map[string]bool{}
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		n := int64(info.Shape.Numel())
		s.Tensors++
		s.Parameters += n
		p := groupOf(name)
		g := byPrefix[p]
		if g == nil {
			g = &group{Prefix: p}
			byPrefix[p] = g
			dtypes[p] = map[string]bool{}
		}
		g.Tensors++
		g.Parameters += n
		dtypes[p][info.DType] = true
	}
	for p, g := range byPrefix {
		for d := range dtypes[p] {
			g.DTypes = append(g.DTypes, d)
		}
		sort.Strings(g.DTypes)
		s.Groups = append(s.Groups, *g)
	}
	sort.Slice(s.Groups, func(i, j int) bool { return s.Groups[i].Prefix < s.Groups[j].Prefix })
	return s
}
