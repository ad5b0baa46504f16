package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

func setupPlan(fs *pflag.FlagSet) func() error {
	var lf llmFlags
	lf.register(fs)
	prompt := fs.String("prompt", "", "the caption to plan")
	out := fs.String("out", "plan.json", "where to write the plan (JSON; edit it and pass it to generate --plan)")
	return func() error {
		if *prompt == "" {
			return errors.New("plan: --prompt is required")
		}
		if err := lf.check(); err != nil {
			return err
		}
		if err := checkOutputFile("--out", *out); err != nil {
			return err
		}
		p, err := lf.planner(os.Stderr).Plan(context.Background(), *prompt)
		if err != nil {
			return err
		}
		if err := p.Write(*out); err != nil {
			return err
		}
		for _, n := range p.Notes {
			fmt.Fprintln(os.Stderr, "rfnet-native: plan:", n)
		}
		fmt.Fprintf(os.Stderr, "rfnet-native: wrote %s (%d objects, planner %s)\n", *out, len(p.Objects), p.Source.Planner)
		return nil
	}
}
