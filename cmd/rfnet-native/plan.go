package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/spf13/pflag"
)

func setupPlan(fs *pflag.FlagSet) func() error {
	var lf llmFlags
	lf.register(fs)
	prompt := fs.String("prompt", "", "the caption to plan")
	format := fs.String("format", string(llm.PlanJSON), "the file's format: json (plan.json, with the descriptions), "+
		"lmd (LLM-grounded Diffusion's layout text) or gligen (phrases and [0, 1] boxes, as GLIGEN and diffusers take them)")
	out := fs.String("out", "", "where to write the plan (default plan.json, plan-lmd.txt or plan-gligen.json, by --format); generate --plan reads all three")
	return func() error {
		if *prompt == "" {
			return errors.New("plan: --prompt is required")
		}
		f, err := llm.ParsePlanFormat(*format)
		if err != nil {
			return fmt.Errorf("plan: --format: %w", err)
		}
		path := *out
		if !fs.Changed("out") {
			path = f.DefaultFile()
		}
		if err := lf.check(); err != nil {
			return err
		}
		if err := checkOutputFile("--out", path); err != nil {
			return err
		}
		p, err := lf.planner(os.Stderr).Plan(context.Background(), *prompt)
		if err != nil {
			return err
		}
		if err := p.WriteAs(path, f); err != nil {
			return err
		}
		for _, n := range p.Notes {
			fmt.Fprintln(os.Stderr, "rfnet-native: plan:", n)
		}
		if lost := f.LeavesOut(); lost != "" {
			fmt.Fprintf(os.Stderr, "rfnet-native: plan: --format %s leaves out the %s\n", f, lost)
		}
		fmt.Fprintf(os.Stderr, "rfnet-native: wrote %s (%d objects, planner %s)\n", path, len(p.Objects), p.Source.Planner)
		return nil
	}
}
