package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/rfnet/rfnet-native/internal/retry"
)

// ErrUnavailable is wrapped when the endpoint kept failing (timeouts, 429, 5xx)
// after every retry.
var ErrUnavailable = errors.New("the LLM endpoint is unavailable")

// ErrReasoningBudget is wrapped when a reasoning model reached its token limit
// before writing an answer, having spent it thinking: a larger
// Config.ReasoningTokens gives it room.
var ErrReasoningBudget = errors.New("its reasoning budget (Config.ReasoningTokens) ran out")

// Chat sends chat-completion requests to an OpenAI-compatible endpoint, with a
// timeout per request and retries with exponential backoff on timeouts, 429
// and 5xx. The planner and the benchmark's judges share it (the judges from
// several goroutines).
type Chat struct {
	c      Config
	client *openai.Client
	// reasoning: send requests in a reasoning model's form (reasoning.go);
	// set from the model's name, or once the server refuses the other form.
	reasoning atomic.Bool
}

// NewChat returns a client for c's endpoint, key, model, timeout and retries.
func NewChat(c Config) *Chat {
	cc := openai.DefaultConfig(c.APIKey)
	if c.BaseURL != "" {
		cc.BaseURL = strings.TrimRight(c.BaseURL, "/")
	}
	ch := &Chat{c: c, client: openai.NewClientWithConfig(cc)}
	ch.reasoning.Store(reasoningModel(c.Model))
	return ch
}

// Endpoint is the base URL requests go to.
func (ch *Chat) Endpoint() string {
	if ch.c.BaseURL != "" {
		return ch.c.BaseURL
	}
	return "https://api.openai.com/v1"
}

// Model is the model requests name.
func (ch *Chat) Model() string { return ch.c.Model }

// Complete sends req (its Model set from the config) and returns the first
// choice's text. A reasoning model gets the request in its form (reasoning.go),
// also when the server first refuses the usual one. An endpoint that keeps
// failing gives an error wrapping ErrUnavailable; other failures wrap the
// client's error (StatusOf reads its HTTP status).
func (ch *Chat) Complete(ctx context.Context, req openai.ChatCompletionRequest) (string, error) {
	req.Model = ch.c.Model
	for {
		reasoning := ch.reasoning.Load()
		r := req
		if reasoning {
			r = asReasoning(req, ch.c.ReasoningTokens)
		}
		text, err := ch.send(ctx, r)
		if err != nil && !reasoning && refusedAsReasoning(err) {
			if ch.c.Log != nil {
				fmt.Fprintf(ch.c.Log, "rfnet-native: llm: %s refused the request's token limit or temperature for %s (%v); "+
					"asking again as a reasoning model expects: max_completion_tokens, no temperature\n", ch.Endpoint(), ch.c.Model, err)
			}
			ch.reasoning.Store(true)
			continue
		}
		return text, err
	}
}

// send is one request with its retries, each try bounded by Timeout.
func (ch *Chat) send(ctx context.Context, req openai.ChatCompletionRequest) (string, error) {
	var resp openai.ChatCompletionResponse
	err := retry.Do(ctx, retry.Policy{
		Retries:   ch.c.Retries,
		Backoff:   ch.c.Backoff,
		Retryable: retryable,
		OnRetry: func(err error, wait time.Duration) {
			if ch.c.Log != nil {
				fmt.Fprintf(ch.c.Log, "rfnet-native: llm: %s: %v; retrying in %s\n", ch.Endpoint(), err, wait)
			}
		},
	}, func() error {
		tctx, cancel := context.WithTimeout(ctx, ch.c.Timeout)
		defer cancel()
		var err error
		resp, err = ch.client.CreateChatCompletion(tctx, req)
		return err
	})
	var exhausted *retry.ExhaustedError
	switch {
	case err == nil:
		return ch.answer(resp, req)
	case errors.As(err, &exhausted):
		return "", fmt.Errorf("llm: %s: %w after %d tries: %v", ch.Endpoint(), ErrUnavailable, exhausted.Tries, exhausted.Last)
	}
	return "", fmt.Errorf("llm: %s: %w", ch.Endpoint(), err)
}

// answer is the first choice's text. An empty answer cut at the token limit
// (a reasoning model that spent its budget thinking) is an error that says
// which limit to raise, rather than an empty plan or verdict.
func (ch *Chat) answer(resp openai.ChatCompletionResponse, req openai.ChatCompletionRequest) (string, error) {
	if len(resp.Choices) == 0 {
		return "", fmt.Errorf("llm: %s returned no choices", ch.Endpoint())
	}
	c := resp.Choices[0]
	if strings.TrimSpace(c.Message.Content) == "" && c.FinishReason == openai.FinishReasonLength {
		if req.MaxCompletionTokens > 0 {
			return "", fmt.Errorf("llm: %s: %s reached its token limit (max_completion_tokens %d, %d of them for reasoning) before writing an answer: %w",
				ch.Endpoint(), ch.c.Model, req.MaxCompletionTokens, max(ch.c.ReasoningTokens, 0), ErrReasoningBudget)
		}
		return "", fmt.Errorf("llm: %s: %s reached its token limit (max_tokens %d) before writing an answer", ch.Endpoint(), ch.c.Model, req.MaxTokens)
	}
	return c.Message.Content, nil
}

// StatusOf is the HTTP status of a failed request (0 when there was none).
func StatusOf(err error) int {
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		return apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		return reqErr.HTTPStatusCode
	}
	return 0
}

// retryable: rate limits, server errors, timeouts and refused connections.
func retryable(err error) bool {
	status := StatusOf(err)
	if status == 429 || status >= 500 {
		return true
	}
	var netErr net.Error
	return status == 0 && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF))
}
