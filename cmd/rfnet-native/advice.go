package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/hub"
	"github.com/rfnet/rfnet-native/judge"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
)

// timeoutFlags are download's flags for the Hub client's timeouts
// (hub.TimeoutError's Field); every other command takes them from the
// environment only.
var timeoutFlags = map[string]string{"EtagTimeout": "etag-timeout", "DownloadTimeout": "download-timeout"}

// flagAdvice adds to a command's error the flag that changes the setting the
// error is about: the libraries name their own settings (a Hub client's
// timeout, an LLM's reasoning budget, the compute dtype), which the command
// line sets with flags. It names only flags that fs, the command's flags,
// has, or says which command has them; any other error stays as it is. (A
// library error that named a flag itself would be wrong for every caller but
// this command line.) run applies it to every command's error; a load's
// errors about its own flags get theirs from loadFlagError.
func flagAdvice(err error, fs *pflag.FlagSet) error {
	has := func(name string) bool { return fs.Lookup(name) != nil }
	var timeout *hub.TimeoutError
	var overflow *pipeline.OverflowError
	switch {
	case errors.As(err, &timeout) && timeoutFlags[timeout.Field] != "":
		name := timeoutFlags[timeout.Field]
		if has(name) {
			return fmt.Errorf("%w; --%s sets it", err, name)
		}
		return fmt.Errorf("%w; rfnet-native download --%s sets it for a download", err, name)
	case errors.As(err, &overflow) && overflow.DType != tensor.Float32 && has("dtype"):
		// pipeline said which dtype to compute in instead.
		return fmt.Errorf("%w; --dtype sets the compute dtype", err)
	case errors.As(err, &overflow) && has("guidance"):
		return fmt.Errorf("%w; --guidance sets the guidance scale", err)
	case errors.Is(err, llm.ErrReasoningBudget) && has("llm-reasoning-tokens"):
		return fmt.Errorf("%w; --llm-reasoning-tokens sets it", err)
	}
	return err
}

// advisedPlanner is a planner whose errors carry flagAdvice's flags, for
// bench: it records each item's failure as text, which a command's error
// only sums up.
type advisedPlanner struct {
	llm.Planner
	fs *pflag.FlagSet
}

func (p advisedPlanner) Plan(ctx context.Context, caption string) (*llm.Plan, error) {
	plan, err := p.Planner.Plan(ctx, caption)
	return plan, flagAdvice(err, p.fs)
}

// advisedJudge is advisedPlanner for eval's judge.
type advisedJudge struct {
	judge.Judge
	fs *pflag.FlagSet
}

func (j advisedJudge) Score(ctx context.Context, prompt string, png []byte) (judge.Answer, error) {
	a, err := j.Judge.Score(ctx, prompt, png)
	return a, flagAdvice(err, j.fs)
}
