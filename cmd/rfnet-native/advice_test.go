package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/hub"
	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/judge"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
)

// commandFlags are the flags the command name registers.
func commandFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("rfnet-native "+name, pflag.ContinueOnError)
	commands[name].setup(fs)
	return fs
}

// wantAdvice checks that flagAdvice keeps err (errors.Is still finds it) and
// adds want to its message.
func wantAdvice(t *testing.T, err error, command, want string) {
	t.Helper()
	got := flagAdvice(err, commandFlags(command))
	if !errors.Is(got, err) || !strings.HasPrefix(got.Error(), err.Error()) || !strings.Contains(got.Error(), want) {
		t.Fatalf("%s: %v, want %v with %q", command, got, err, want)
	}
}

// The Hub client names its own timeout; the user is told the flag: download's
// own, or from the other commands (which take the environment's), download's.
func TestTimeoutAdviceNamesTheFlag(t *testing.T) {
	for _, c := range []struct{ field, env, flag string }{
		{"EtagTimeout", "HF_HUB_ETAG_TIMEOUT", "--etag-timeout"},
		{"DownloadTimeout", "HF_HUB_DOWNLOAD_TIMEOUT", "--download-timeout"},
	} {
		t.Run(c.field, func(t *testing.T) {
			err := fmt.Errorf("hub: org/name: giving up after 4 tries: %w",
				&hub.TimeoutError{Request: "GET https://huggingface.co/org/name", Limit: 10 * time.Second, Field: c.field, Env: c.env})
			wantAdvice(t, err, "download", "; "+c.flag+" sets it")
			for _, command := range []string{"generate", "bench", "inspect", "tokenize"} {
				wantAdvice(t, err, command, "; rfnet-native download "+c.flag+" sets it for a download")
			}
		})
	}
}

// pipeline blames an overflow on the compute dtype; the user is told the flag
// that sets it (fp16 and bf16 need a GPU, so the error is made here).
func TestHalfPrecisionOverflowNamesTheFlag(t *testing.T) {
	for _, d := range []tensor.DType{tensor.Float16, tensor.BFloat16} {
		err := fmt.Errorf("pipeline: the UNet's prediction at step 1 %w: the unet weights are finite, so %w", pipeline.ErrNonFinite, &pipeline.OverflowError{DType: d})
		for _, command := range []string{"generate", "bench-engine"} {
			wantAdvice(t, err, command, "; --dtype sets the compute dtype")
		}
	}
	// bench-engine has no --guidance, so an fp32 overflow there names no flag.
	fp32 := fmt.Errorf("pipeline: the decoded image %w: the vae weights are finite, so %w", pipeline.ErrNonFinite, &pipeline.OverflowError{DType: tensor.Float32})
	if got := flagAdvice(fp32, commandFlags("bench-engine")); got != fp32 {
		t.Fatalf("bench-engine: %v, want the error unchanged", got)
	}
}

// In fp32 the guidance scale is the suspect: a generation that overflows
// names --guidance, as it did when pipeline named the flag itself.
func TestFP32OverflowNamesTheGuidanceFlag(t *testing.T) {
	err := run([]string{"generate", "--method", "sd", "--weights", fixtures.Path("models", "tiny-sd1"), "--prompt", "a cat",
		"--steps", "2", "--width", "64", "--height", "64", "--guidance", "1e38", "--out", filepath.Join(t.TempDir(), "a.png"), "--quiet"})
	var overflow *pipeline.OverflowError
	if !errors.As(err, &overflow) || !strings.Contains(err.Error(), "a very large guidance scale?") ||
		!strings.HasSuffix(err.Error(), "; --guidance sets the guidance scale") {
		t.Fatalf("generate --guidance 1e38: %v", err)
	}
}

// A reasoning model that spends its budget thinking: llm names
// Config.ReasoningTokens, and plan's user is told the flag.
func TestReasoningBudgetNamesTheFlag(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{FinishReason: "length"} })
	defer s.Close()
	err := run([]string{"plan", "--prompt", "a cat", "--llm-base-url", s.BaseURL(), "--llm-api-key", "k", "--llm-cache", "",
		"--llm-model", "gpt-5-mini", "--llm-reasoning-tokens", "100", "--out", filepath.Join(t.TempDir(), "plan.json")})
	if !errors.Is(err, llm.ErrReasoningBudget) || !strings.Contains(err.Error(), "100 of them for reasoning") ||
		!strings.HasSuffix(err.Error(), "; --llm-reasoning-tokens sets it") {
		t.Fatalf("plan: %v", err)
	}
}

// bench and eval record each item's failure as text, which their command's
// error only sums up: the planner's and the judge's errors get the flag first.
func TestItemFailuresNameTheFlag(t *testing.T) {
	budget := fmt.Errorf("llm: E: gpt-5-mini reached its token limit: %w", llm.ErrReasoningBudget)
	_, planErr := advisedPlanner{failingPlanner{budget}, commandFlags("bench")}.Plan(context.Background(), "a cat")
	_, judgeErr := advisedJudge{failingJudge{budget}, commandFlags("eval")}.Score(context.Background(), "a cat", nil)
	for what, err := range map[string]error{"bench's planner": planErr, "eval's judge": judgeErr} {
		if !errors.Is(err, llm.ErrReasoningBudget) || err.Error() != budget.Error()+"; --llm-reasoning-tokens sets it" {
			t.Errorf("%s: %v", what, err)
		}
	}
}

type failingPlanner struct{ err error }

func (p failingPlanner) Plan(context.Context, string) (*llm.Plan, error) { return nil, p.err }

type failingJudge struct{ err error }

func (failingJudge) Name() string { return "failing" }

func (j failingJudge) Score(context.Context, string, []byte) (judge.Answer, error) {
	return judge.Answer{}, j.err
}

// Errors flagAdvice knows nothing about, and nil, pass through unchanged.
func TestOtherErrorsKeepTheirMessage(t *testing.T) {
	plain := errors.New("pipeline: something else")
	if got := flagAdvice(plain, commandFlags("generate")); got != plain {
		t.Fatalf("%v, want the error unchanged", got)
	}
	if got := flagAdvice(nil, commandFlags("generate")); got != nil {
		t.Fatalf("%v, want nil", got)
	}
}
