package llm

import (
	"io"
	"os"
	"time"
)

// Config configures the chat client (Chat) and the planner that asks through
// it (OpenAI); the benchmark's judges use its endpoint, timeout and retries.
type Config struct {
	// BaseURL of the API (OPENAI_BASE_URL; https://api.openai.com/v1 when empty).
	BaseURL string
	// APIKey (OPENAI_API_KEY); local servers often need none.
	APIKey string
	// Model name, for example gpt-4o or the name a local server gives its model.
	Model string
	// Temperature and MaxTokens of the request (the reference: 0.25 and 900).
	// Reasoning models (reasoning.go) take no temperature, and get MaxTokens
	// plus ReasoningTokens as max_completion_tokens, which counts their hidden
	// reasoning too.
	Temperature     float32
	MaxTokens       int
	ReasoningTokens int
	// Timeout bounds each request; Retries is how many times a request that
	// timed out or got 429/5xx is retried, waiting Backoff, then twice as long, ...
	Timeout time.Duration
	Retries int
	Backoff time.Duration
	// ParseAttempts is how many answers are asked for when they do not parse (3 in the reference).
	ParseAttempts int
	// CacheDir keeps answers on disk, keyed by endpoint, model, template version
	// and caption; empty disables the cache.
	CacheDir string
	// Options turn answers into plans.
	Options Options
	// Log receives one line per retry and fallback (nil: quiet).
	Log io.Writer
}

// DefaultConfig fills what the caller leaves out, reading OPENAI_BASE_URL and OPENAI_API_KEY.
func DefaultConfig() Config {
	return Config{BaseURL: os.Getenv("OPENAI_BASE_URL"), APIKey: os.Getenv("OPENAI_API_KEY"), Model: "gpt-4o",
		Temperature: 0.25, MaxTokens: 900, ReasoningTokens: 8192, Timeout: 120 * time.Second, Retries: 4, Backoff: 2 * time.Second,
		ParseAttempts: 3, Options: DefaultOptions()}
}

// Configured reports whether an endpoint is set up (an API key or a base URL).
func (c Config) Configured() bool { return c.APIKey != "" || c.BaseURL != "" }
