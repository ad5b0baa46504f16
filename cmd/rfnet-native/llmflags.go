package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/llm"
)

// llmFlags configure the stage-1 planner.
type llmFlags struct {
	model, baseURL, apiKey, cache string
	timeout                       time.Duration
	retries, reasoningTokens      int
	offline, scaleBoxes           bool
	maxObjects                    int
}

func (f *llmFlags) register(fs *pflag.FlagSet) {
	d := llm.DefaultConfig()
	fs.StringVar(&f.model, "llm-model", d.Model, "LLM model name at the endpoint")
	fs.StringVar(&f.baseURL, "llm-base-url", d.BaseURL, "OpenAI-compatible API base URL (default $OPENAI_BASE_URL, else api.openai.com)")
	fs.StringVar(&f.apiKey, "llm-api-key", "", "API key (default $OPENAI_API_KEY)")
	fs.DurationVar(&f.timeout, "llm-timeout", d.Timeout, "timeout of one LLM request")
	fs.IntVar(&f.retries, "llm-retries", d.Retries, "retries of a request that timed out or got 429/5xx (exponential backoff)")
	fs.IntVar(&f.reasoningTokens, "llm-reasoning-tokens", d.ReasoningTokens, reasoningTokensUsage)
	fs.StringVar(&f.cache, "llm-cache", defaultCacheDir(), "folder of cached LLM answers (empty: no cache)")
	fs.BoolVar(&f.offline, "offline-planner", false, "plan without an LLM (noun phrases side by side)")
	fs.BoolVar(&f.scaleBoxes, "scale-boxes", false, "rescale the LLM's boxes to fill the canvas (the reference CLI's default; off in the paper's run)")
	fs.IntVar(&f.maxObjects, "max-objects", llm.DefaultOptions().MaxObjects, "keep at most this many objects of a plan (the LLM's, the offline planner's or a --plan file), dropping the rest with a note")
}

// checkLLMTransport checks the request flags the planner and the judges share:
// a timeout of zero or less would fail every request at once (and, for the
// planner, fall back to the offline planner with exit 0), so it is refused.
func checkLLMTransport(timeout time.Duration, retries, reasoningTokens int) error {
	switch {
	case timeout <= 0:
		return fmt.Errorf("--llm-timeout %s: want a positive duration (such as 60s or 2m)", timeout)
	case retries < 0:
		return fmt.Errorf("--llm-retries %d: want 0 or more", retries)
	case reasoningTokens < 0:
		return fmt.Errorf("--llm-reasoning-tokens %d: want 0 or more", reasoningTokens)
	}
	return nil
}

// reasoningTokensUsage is shared by the planner's and the judges' flags.
const reasoningTokensUsage = "tokens a reasoning model (o1/o3/o4, gpt-5, gpt-6) may spend thinking, on top of the answer's own limit"

func defaultCacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "rfnet-native", "llm")
	}
	return ""
}

// planner returns the configured planner: the LLM with an offline fallback
// when it is unavailable, or the offline planner (announced on log) when no
// endpoint is configured or --offline-planner is set.
func (f *llmFlags) planner(log io.Writer) llm.Planner {
	c := llm.DefaultConfig()
	c.Model, c.Timeout, c.Retries, c.CacheDir, c.Log = f.model, f.timeout, f.retries, f.cache, log
	c.ReasoningTokens = f.reasoningTokens
	if f.baseURL != "" {
		c.BaseURL = f.baseURL
	}
	if f.apiKey != "" {
		c.APIKey = f.apiKey
	}
	c.Options.ScaleBoxes, c.Options.MaxObjects = f.scaleBoxes, f.maxObjects
	offline := llm.Offline{MaxObjects: f.maxObjects}
	if f.offline || !c.Configured() {
		if !f.offline {
			io.WriteString(log, "rfnet-native: no LLM configured (set OPENAI_API_KEY, or OPENAI_BASE_URL for a local server): using the offline planner, which only places the caption's noun phrases side by side\n")
		}
		return offline
	}
	return llm.Fallback{Primary: llm.NewOpenAI(c), Offline: offline, Log: log}
}
