package llm

import (
	"errors"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// Reasoning models (OpenAI's o-series, gpt-5 and later) refuse max_tokens and
// any sampling temperature but the default, and count their hidden reasoning
// against max_completion_tokens. go-openai refuses such requests before they
// are sent, and the API answers 400 for model names go-openai does not know
// (an Azure deployment's own name, say); either way a plan or a judgement
// would fail outright. Chat therefore sends these models max_completion_tokens
// (the visible budget plus Config.ReasoningTokens) and no temperature, and
// switches to that form for the rest of its life when a server refuses the
// other.

// reasoningPrefixes are the model-name prefixes treated as reasoning models
// from the start: those go-openai's own check refuses max_tokens for (o1, o3,
// o4, gpt-5; its GPT-6 names all begin with gpt-6).
var reasoningPrefixes = []string{"o1", "o3", "o4", "gpt-5", "gpt-6"}

// reasoningModel reports whether model is known to be a reasoning model.
// Names behind a router's prefix ("openai/gpt-5") are left to the server, which
// may take max_tokens itself, and to the fallback on its refusal.
func reasoningModel(model string) bool {
	m := strings.ToLower(model)
	for _, p := range reasoningPrefixes {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// asReasoning rewrites req for a reasoning model: its token limit becomes
// max_completion_tokens with room for reasoningTokens of hidden reasoning, and
// the sampling parameters go (the model's defaults apply).
func asReasoning(req openai.ChatCompletionRequest, reasoningTokens int) openai.ChatCompletionRequest {
	if req.MaxCompletionTokens == 0 && req.MaxTokens > 0 {
		req.MaxCompletionTokens = req.MaxTokens + max(reasoningTokens, 0)
	}
	req.MaxTokens = 0
	req.Temperature, req.TopP = 0, 0
	return req
}

// refusedAsReasoning reports whether err is a server's 400 refusing a
// parameter that reasoning models do not take (OpenAI names it in the error's
// param: max_tokens, temperature or top_p), or go-openai's own refusal of one.
func refusedAsReasoning(err error) bool {
	if errors.Is(err, openai.ErrReasoningModelMaxTokensDeprecated) || errors.Is(err, openai.ErrReasoningModelLimitationsOther) ||
		errors.Is(err, openai.ErrReasoningSamplingUnsupported) {
		return true
	}
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 400 {
		return false
	}
	if apiErr.Param != nil {
		switch *apiErr.Param {
		case "max_tokens", "temperature", "top_p":
			return true
		}
	}
	// Servers that copy OpenAI's wording but not its param field.
	return strings.Contains(apiErr.Message, "max_completion_tokens")
}
