package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
)

// tokenFields describes how a request limits tokens and sets a temperature.
func tokenFields(r fakeopenai.Request) string {
	s := func(p *int) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	t := "-"
	if r.Temperature != nil {
		t = fmt.Sprint(*r.Temperature)
	}
	return fmt.Sprintf("max_tokens %s, max_completion_tokens %s, temperature %s", s(r.MaxTokens), s(r.MaxCompletionTokens), t)
}

// A model known by name to reason gets max_completion_tokens (the answer's
// 900 plus 8192 for reasoning) and no temperature from the first request; any
// other model gets the reference's max_tokens and temperature.
func TestReasoningModelRequests(t *testing.T) {
	for _, c := range []struct{ model, want string }{
		{"gpt-5", "max_tokens -, max_completion_tokens 9092, temperature -"},
		{"o3-mini", "max_tokens -, max_completion_tokens 9092, temperature -"},
		{"gpt-6-sol", "max_tokens -, max_completion_tokens 9092, temperature -"},
		{"gpt-4o", "max_tokens 900, max_completion_tokens -, temperature 0.25"},
		{"qwen2.5-7b-instruct", "max_tokens 900, max_completion_tokens -, temperature 0.25"},
	} {
		t.Run(c.model, func(t *testing.T) {
			s := fakeopenai.New(func(_ int, r fakeopenai.Request) fakeopenai.Reply {
				if reasoningModel(r.Model) {
					return fakeopenai.RefuseAsReasoningModel(r, fakeopenai.Reply{Content: goodJSON})
				}
				return fakeopenai.Reply{Content: goodJSON}
			})
			defer s.Close()
			var log bytes.Buffer
			cfg := testConfig(s, &log)
			cfg.Model = c.model
			if _, err := NewOpenAI(cfg).Plan(context.Background(), "a mouse hunting a lion"); err != nil {
				t.Fatalf("%v\nlog: %s", err, log.String())
			}
			reqs := s.Requests()
			if len(reqs) != 1 || tokenFields(reqs[0]) != c.want {
				t.Fatalf("%d requests, the first with %s; want one with %s", len(reqs), tokenFields(reqs[0]), c.want)
			}
			// Known by name: no refusal to recover from, so nothing logged.
			if log.Len() != 0 {
				t.Fatalf("log: %s", log.String())
			}
		})
	}
}

// A model whose name says nothing (an Azure deployment of a reasoning model)
// is asked the usual way once; on the server's 400 naming max_tokens or the
// temperature the request is sent again in a reasoning model's form, with the
// JSON schema kept, and later requests use that form from the start.
func TestReasoningModelFallback(t *testing.T) {
	for _, refused := range []string{"max_tokens", "temperature"} {
		t.Run(refused, func(t *testing.T) {
			s := fakeopenai.New(func(_ int, r fakeopenai.Request) fakeopenai.Reply {
				if refused == "temperature" && r.MaxTokens != nil {
					r.MaxTokens = nil // this server only minds the temperature
				}
				return fakeopenai.RefuseAsReasoningModel(r, fakeopenai.Reply{Content: goodJSON})
			})
			defer s.Close()
			var log bytes.Buffer
			cfg := testConfig(s, &log)
			cfg.Model = "my-reasoning-deployment"
			cfg.CacheDir = ""
			o := NewOpenAI(cfg)
			for _, caption := range []string{"a mouse hunting a lion", "a drop of water on the International Space Station"} {
				if _, err := o.Plan(context.Background(), caption); err != nil {
					t.Fatalf("%s: %v\nlog: %s", caption, err, log.String())
				}
			}
			reqs := s.Requests()
			want := []string{
				"max_tokens 900, max_completion_tokens -, temperature 0.25",
				"max_tokens -, max_completion_tokens 9092, temperature -",
				"max_tokens -, max_completion_tokens 9092, temperature -",
			}
			if len(reqs) != len(want) {
				t.Fatalf("%d requests, want %d\nlog: %s", len(reqs), len(want), log.String())
			}
			for i, r := range reqs {
				if got := tokenFields(r); got != want[i] {
					t.Errorf("request %d: %s, want %s", i, got, want[i])
				}
				if !strings.Contains(string(r.ResponseFormat), "json_schema") {
					t.Errorf("request %d lost the JSON schema: %s", i, r.ResponseFormat)
				}
			}
			if !strings.Contains(log.String(), "asking again as a reasoning model expects") {
				t.Errorf("the switch is not logged: %s", log.String())
			}
		})
	}
}

// A reasoning model that spends its whole budget thinking returns an empty
// answer cut at the limit: an error naming the limit and the Config field
// that raises it (the command line names its flag), asked once.
func TestReasoningBudgetSpent(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply {
		return fakeopenai.Reply{Content: "", FinishReason: "length"}
	})
	defer s.Close()
	var log bytes.Buffer
	cfg := testConfig(s, &log)
	cfg.Model = "gpt-5-mini"
	_, err := NewOpenAI(cfg).Plan(context.Background(), "a mouse hunting a lion")
	if !errors.Is(err, ErrReasoningBudget) || !strings.Contains(err.Error(), "max_completion_tokens 9092, 8192 of them for reasoning") ||
		!strings.Contains(err.Error(), "Config.ReasoningTokens") {
		t.Fatalf("error %v", err)
	}
	if n := len(s.Requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestRefusedAsReasoning(t *testing.T) {
	param := func(s string) *string { return &s }
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"go-openai max_tokens", fmt.Errorf("llm: x: %w", openai.ErrReasoningModelMaxTokensDeprecated), true},
		{"go-openai temperature", openai.ErrReasoningSamplingUnsupported, true},
		{"400 max_tokens", &openai.APIError{HTTPStatusCode: 400, Param: param("max_tokens")}, true},
		{"400 top_p", &openai.APIError{HTTPStatusCode: 400, Param: param("top_p")}, true},
		{"400 wording only", &openai.APIError{HTTPStatusCode: 400, Message: "use 'max_completion_tokens' instead"}, true},
		{"400 schema", &openai.APIError{HTTPStatusCode: 400, Param: param("response_format"), Message: "Invalid schema"}, false},
		{"400 bare", &openai.APIError{HTTPStatusCode: 400}, false},
		{"401 max_tokens", &openai.APIError{HTTPStatusCode: 401, Param: param("max_tokens")}, false},
		{"other", fmt.Errorf("connection refused"), false},
	} {
		if got := refusedAsReasoning(c.err); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
