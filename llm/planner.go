package llm

import (
	"context"
	"fmt"

	openai "github.com/sashabaranov/go-openai"

	"github.com/rfnet/rfnet-native/internal/answercache"
)

// Planner turns a caption into a plan.
type Planner interface {
	Plan(ctx context.Context, caption string) (*Plan, error)
}

// OpenAI plans with a chat-completions endpoint.
type OpenAI struct {
	c      Config
	chat   *Chat
	cache  answercache.Cache // answers by endpoint, model, template version and caption
	schema bool              // ask for JSON-schema output; turned off when the server refuses it
}

// NewOpenAI returns a planner for c.
func NewOpenAI(c Config) *OpenAI {
	return &OpenAI{c: c, chat: NewChat(c), cache: answercache.New(c.CacheDir), schema: true}
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
	key := answercache.Key(o.endpoint(), o.c.Model, TemplateVersion, caption)
	var cached cacheEntry
	if o.cache.Load(key, &cached) {
		if p, err := o.toPlan(caption, cached.Response, src); err == nil {
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
			if err := o.cache.Store(key, cacheEntry{o.endpoint(), o.c.Model, TemplateVersion, caption, text}); err != nil {
				o.logf("cache: %v", err)
			}
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

// cacheEntry is an answer on disk; the request's parts are kept beside it
// for whoever opens the file.
type cacheEntry struct {
	Endpoint, Model, TemplateVersion, Caption, Response string
}
