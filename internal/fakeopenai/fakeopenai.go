// Package fakeopenai is an OpenAI-compatible chat-completions server for tests
// (net/http/httptest): each request is answered by a function of the request,
// which can return an HTTP error status, delay, or any reply text.
package fakeopenai

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Request is the part of a chat request a test looks at; the pointers are nil
// when the request leaves the field out.
type Request struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
}

// Message is a chat message; Content is a string, or a list of parts for vision requests.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// Text returns a message's text (the text parts of a multi-part message, joined).
func (m Message) Text() string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	json.Unmarshal(m.Content, &parts)
	for _, p := range parts {
		s += p.Text
	}
	return s
}

// Reply is how the server answers one request.
type Reply struct {
	Status  int           // 0 or 200: success with Content
	Content string        // the assistant's text
	Delay   time.Duration // wait before answering
	// Param and Message fill an error's body (OpenAI names the refused
	// parameter in param); Message defaults to the status text.
	Param, Message string
	// FinishReason of a success ("stop" when empty).
	FinishReason string
}

// RefuseAsReasoningModel answers as OpenAI does a request to a reasoning
// model that names max_tokens or a temperature other than 1, and ok otherwise.
func RefuseAsReasoningModel(r Request, ok Reply) Reply {
	switch {
	case r.MaxTokens != nil:
		return Reply{Status: http.StatusBadRequest, Param: "max_tokens",
			Message: "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."}
	case r.Temperature != nil && *r.Temperature != 1:
		return Reply{Status: http.StatusBadRequest, Param: "temperature",
			Message: "Unsupported value: 'temperature' does not support this value with this model. Only the default (1) value is supported."}
	}
	return ok
}

// Server is a running fake endpoint.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Request
}

// New starts a server that answers with answer(n, request), n counting from 0.
func New(answer func(n int, r Request) Reply) *Server {
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var r Request
		if err := json.NewDecoder(req.Body).Decode(&r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		n := len(s.requests)
		s.requests = append(s.requests, r)
		s.mu.Unlock()
		a := answer(n, r)
		if a.Delay > 0 {
			select {
			case <-time.After(a.Delay):
			case <-req.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if a.Status != 0 && a.Status != http.StatusOK {
			w.WriteHeader(a.Status)
			e := map[string]any{"message": cmp.Or(a.Message, http.StatusText(a.Status)), "type": "fake"}
			if a.Param != "" {
				e["param"] = a.Param
			}
			json.NewEncoder(w).Encode(map[string]any{"error": e})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": "fake", "object": "chat.completion", "model": r.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": cmp.Or(a.FinishReason, "stop"),
				"message": map[string]any{"role": "assistant", "content": a.Content}}},
		})
	}))
	return s
}

// BaseURL is the OpenAI-style base URL of the server.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}
