package llm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/rfnet/rfnet-native/internal/atomicfile"

	"github.com/rfnet/rfnet-native/internal/regular"
)

// Planner turns a caption into a plan.
type Planner interface {
	Plan(ctx context.Context, caption string) (*Plan, error)
}

// OpenAI plans with a chat-completions endpoint.
type OpenAI struct {
	c      Config
	chat   *Chat
	schema bool // ask for JSON-schema output; turned off when the server refuses it
}

// NewOpenAI returns a planner for c.
func NewOpenAI(c Config) *OpenAI {
	return &OpenAI{c: c, chat: NewChat(c), schema: true}
}

func (o *OpenAI) endpoint() string { return o.chat.Endpoint() }

func (o *OpenAI) logf(format string, args ...any) {
	if o.c.Log != nil {
		fmt.Fprintf(o.c.Log, "rfnet-native: llm: "+format+"\n", args...)
	}
}

// Plan asks the model (or the cache) for a plan of caption.
func (o *OpenAI) Plan(ctx context.Context, caption string) (*Plan, error) {
	caption = CleanCaption(caption)
	src := &Source{Planner: "openai", Endpoint: o.endpoint(), Model: o.c.Model, TemplateVersion: TemplateVersion}
	key := o.cacheKey(caption)
	if text, ok := o.cached(key); ok {
		if p, err := o.toPlan(caption, text, src); err == nil {
			p.Source.Cached = true
			return p, nil
		}
		o.logf("the cached answer for %q no longer parses; asking again", caption)
	}
	var lastErr error
	for attempt := 1; attempt <= max(1, o.c.ParseAttempts); attempt++ {
		text, err := o.complete(ctx, renderTemplate(caption))
		if err != nil {
			return nil, err
		}
		p, err := o.toPlan(caption, text, src)
		if err == nil {
			o.store(key, caption, text)
			return p, nil
		}
		lastErr = err
		o.logf("answer %d does not give a plan (%v)", attempt, err)
	}
	return nil, lastErr
}

func (o *OpenAI) toPlan(caption, text string, src *Source) (*Plan, error) {
	r, err := parseReply(text)
	if err != nil {
		return nil, err
	}
	p, err := buildPlan(caption, r, o.c.Options)
	if err != nil {
		return nil, err
	}
	s := *src
	s.Response = text
	p.Source = &s
	return p, nil
}

// complete asks for a plan, dropping the JSON schema if the server refuses it.
func (o *OpenAI) complete(ctx context.Context, prompt string) (string, error) {
	for {
		req := openai.ChatCompletionRequest{
			Messages:    []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: prompt}},
			Temperature: o.c.Temperature,
			MaxTokens:   o.c.MaxTokens,
		}
		if o.schema {
			req.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
				JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: "scene_plan", Schema: planSchema}}
		}
		text, err := o.chat.Complete(ctx, req)
		if err != nil && o.schema && StatusOf(err) == 400 {
			o.logf("%s refused the JSON schema (%v); asking without it", o.endpoint(), err)
			o.schema = false
			continue
		}
		return text, err
	}
}

func (o *OpenAI) cacheKey(caption string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{o.endpoint(), o.c.Model, TemplateVersion, caption}, "\x00")))
	return hex.EncodeToString(h[:])
}

type cacheEntry struct {
	Endpoint, Model, TemplateVersion, Caption, Response string
}

func (o *OpenAI) cached(key string) (string, bool) {
	if o.c.CacheDir == "" {
		return "", false
	}
	raw, err := regular.ReadFile(filepath.Join(o.c.CacheDir, key+".json"))
	if err != nil {
		return "", false
	}
	var e cacheEntry
	if json.Unmarshal(raw, &e) != nil {
		return "", false
	}
	return e.Response, true
}

func (o *OpenAI) store(key, caption, text string) {
	if o.c.CacheDir == "" {
		return
	}
	if err := os.MkdirAll(o.c.CacheDir, 0o755); err != nil {
		o.logf("cache: %v", err)
		return
	}
	data, _ := json.MarshalIndent(cacheEntry{o.endpoint(), o.c.Model, TemplateVersion, caption, text}, "", "  ")
	if err := atomicfile.WriteBytes(filepath.Join(o.c.CacheDir, key+".json"), data); err != nil {
		o.logf("cache: %v", err)
	}
}
