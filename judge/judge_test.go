package judge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
	"github.com/rfnet/rfnet-native/llm"
)

func TestParseRating(t *testing.T) {
	for reply, want := range map[string]float64{
		`{"score": 85, "explanation": "mostly right"}`:                                 85,
		"Here you go:\n```json\n{\n  \"score\": 60,\n  \"explanation\": \"x\"\n}\n```": 60,
		`{"score": "72.5", "explanation": "quoted number"}`:                            72.5,
		`I would rate it. Score: 40 because nothing happens.`:                          40,
		`{"explanation": "no number here", "rating": 3} score = 90`:                    90,
		`Score: 85/100, the roles are reversed`:                                        85,
		`score: 72.5 out of 100`:                                                       72.5,
	} {
		got, _, err := ParseRating(reply)
		if err != nil || got != want {
			t.Errorf("ParseRating(%q) = %v, %v; want %v", reply, got, err, want)
		}
	}
	// A rating outside 0-100, or on another scale, fails: it is never
	// clamped, truncated or rescaled into a score.
	for _, bad := range []string{`{"score": 150}`, `I cannot rate this image.`, `{"score": -5}`, ``,
		`{"score": 1e999}`, `{"score": "NaN"}`, `{"score": "Inf"}`, `Score: 1e3`, `score: 1.5e2 points`,
		`Score: 8/10`, `{"score": "8/10"}`, `score: 4 out of 5`, `score: 101`} {
		if _, _, err := ParseRating(bad); err == nil {
			t.Errorf("ParseRating(%q) should fail", bad)
		}
	}
}

func judgeConfig(s *fakeopenai.Server) Config {
	c := llm.DefaultConfig()
	c.BaseURL, c.APIKey, c.Model, c.Backoff, c.Retries = s.BaseURL(), "k", "vision", time.Millisecond, 3
	return Config{Chat: c}
}

// The two-turn protocol: the image and a description request first, then the
// rating request with the earlier answer in the conversation; 429 is retried.
func TestGPT4ScoreConversation(t *testing.T) {
	s := fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply {
		if n == 0 {
			return fakeopenai.Reply{Status: 429}
		}
		if len(r.Messages) == 2 {
			return fakeopenai.Reply{Content: "A grey mouse chases a lion across dry grass."}
		}
		return fakeopenai.Reply{Content: "```json\n{\"score\": 80, \"explanation\": \"the roles are reversed as asked\"}\n```"}
	})
	defer s.Close()
	a, err := NewGPT4Score(judgeConfig(s)).Score(context.Background(), "a mouse hunting a lion", []byte("\x89PNG fake"))
	if err != nil {
		t.Fatal(err)
	}
	if *a.Score != 0.8 || a.Explanation != "the roles are reversed as asked" || !strings.HasPrefix(a.Description, "A grey mouse") {
		t.Fatalf("%+v", a)
	}
	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	first, second := reqs[1], reqs[2]
	if !strings.Contains(string(first.Messages[1].Content), "data:image/png;base64,") || strings.Contains(first.Messages[1].Text(), "mouse") {
		t.Fatalf("turn 1 must send the image and not the prompt: %s", first.Messages[1].Content)
	}
	if len(second.Messages) != 4 || second.Messages[2].Role != "assistant" || !strings.Contains(second.Messages[3].Text(), `"a mouse hunting a lion"`) {
		t.Fatalf("turn 2: %+v", second.Messages)
	}
}

// A reasoning model as the judge (gpt-5 here) gets both turns with
// max_completion_tokens (the reference's 300 plus the reasoning budget) and no
// temperature or max_tokens, which it would refuse.
func TestGPT4ScoreOnReasoningModel(t *testing.T) {
	s := fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply {
		ok := fakeopenai.Reply{Content: `{"score": 70, "explanation": "fine"}`}
		if len(r.Messages) == 2 {
			ok.Content = "a picture"
		}
		return fakeopenai.RefuseAsReasoningModel(r, ok)
	})
	defer s.Close()
	c := judgeConfig(s)
	c.Chat.Model = "gpt-5"
	a, err := NewGPT4Score(c).Score(context.Background(), "x", []byte("png"))
	if err != nil || *a.Score != 0.7 {
		t.Fatalf("%+v %v", a, err)
	}
	want := 300 + llm.DefaultConfig().ReasoningTokens
	for i, r := range s.Requests() {
		if r.MaxTokens != nil || r.Temperature != nil || r.MaxCompletionTokens == nil || *r.MaxCompletionTokens != want {
			t.Fatalf("request %d: max_tokens %v, temperature %v, max_completion_tokens %v; want only max_completion_tokens %d",
				i, r.MaxTokens, r.Temperature, r.MaxCompletionTokens, want)
		}
	}
}

func TestMalformedRatingFails(t *testing.T) {
	s := fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply {
		if len(r.Messages) == 2 {
			return fakeopenai.Reply{Content: "a picture"}
		}
		return fakeopenai.Reply{Content: "I'd say it's pretty good!"}
	})
	defer s.Close()
	a, err := NewGPT4Score(judgeConfig(s)).Score(context.Background(), "x", []byte("png"))
	if err == nil || a.Score != nil || !strings.Contains(err.Error(), "no score") {
		t.Fatalf("%+v %v", a, err)
	}
}

func TestCLIPScore(t *testing.T) {
	if s := CLIPScore([]float64{1, 0}, []float64{1, 1}); s < 0.7071 || s > 0.7072 {
		t.Fatalf("%v", s)
	}
	if s := CLIPScore([]float64{1, 0}, []float64{-1, 0}); s != 0 {
		t.Fatalf("negative cosine must clamp to 0, got %v", s)
	}
}

// A cached answer whose score is not a number from 0 to 1 (edited, or written
// by a bug) is not used: the judge is asked again and the entry replaced.
func TestCachedScoreOutOfRangeIsAskedAgain(t *testing.T) {
	s := fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply {
		if len(r.Messages) == 2 {
			return fakeopenai.Reply{Content: "a picture"}
		}
		return fakeopenai.Reply{Content: `{"score": 80, "explanation": "good"}`}
	})
	defer s.Close()
	c := judgeConfig(s)
	c.CacheDir = t.TempDir()
	j := NewGPT4Score(c)
	if a, err := j.Score(context.Background(), "x", []byte("png")); err != nil || *a.Score != 0.8 {
		t.Fatalf("%+v %v", a, err)
	}
	entries, _ := filepath.Glob(filepath.Join(c.CacheDir, "*.json"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %v", entries)
	}
	os.WriteFile(entries[0], []byte(`{"description": "a picture", "score": 5}`), 0o644)
	asked := len(s.Requests())
	if a, err := j.Score(context.Background(), "x", []byte("png")); err != nil || *a.Score != 0.8 || len(s.Requests()) != asked+2 {
		t.Fatalf("%+v %v, %d requests after %d", a, err, len(s.Requests()), asked)
	}
}

// The cache's files keep their names: an answer written by an earlier
// version, at the SHA-256 of judge, protocol, endpoint, model, image hash and
// prompt each followed by a NUL, is used without asking; one written before
// this package indented entries, compact, is read too.
func TestCacheReadsExistingEntries(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: "a picture"} })
	defer s.Close()
	c := judgeConfig(s)
	c.CacheDir = t.TempDir()
	png := []byte("png")
	img := sha256.Sum256(png)
	h := sha256.New()
	for _, part := range []string{"gpt4score", ProtocolVersion, c.Chat.BaseURL, c.Chat.Model, hex.EncodeToString(img[:]), "x"} {
		h.Write([]byte(part + "\x00"))
	}
	entry := filepath.Join(c.CacheDir, hex.EncodeToString(h.Sum(nil))+".json")
	if err := os.WriteFile(entry, []byte(`{"description":"a cat","reply":"{\"score\": 70}","score":0.7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewGPT4Score(c).Score(context.Background(), "x", png)
	if err != nil || a.Description != "a cat" || a.Score == nil || *a.Score != 0.7 || len(s.Requests()) != 0 {
		t.Fatalf("%+v %v, %d requests", a, err, len(s.Requests()))
	}
}

// GPT4-CLIP never gives a score outside [0, 1]: a feature with NaN fails the
// item, and rounding above 1 is capped.
func TestGPT4CLIPScoreRange(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: "a picture"} })
	defer s.Close()
	nan := func(string) []float64 { return []float64{math.NaN(), 1} }
	if a, err := NewGPT4CLIP(judgeConfig(s), nan).Score(context.Background(), "x", []byte("png")); err == nil || a.Score != nil {
		t.Fatalf("NaN feature: %+v %v", a, err)
	}
	// Parallel vectors whose cosine rounds to 1.0000000000000002.
	a := []float64{0.4246374970712657, 0.6868230728671094, 0.06563701921747622}
	const k = 1.5651925473279125
	if s := CLIPScore(a, []float64{a[0] * k, a[1] * k, a[2] * k}); s != 1 {
		t.Fatalf("CLIPScore of parallel features = %v, want 1", s)
	}
}
