package llm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/internal/fakeopenai"
)

const goodJSON = `{"objects": [{"name": "a mouse", "box": [40, 200, 150, 150], "description": "baring tiny teeth", "alternatives": ["stalking low", "eyes fixed on its prey"]},
{"name": "a lion", "box": [240, 120, 240, 300], "description": "cowering", "alternatives": ["backing away", "trembling"]}], "background": "the savanna", "negative": ""}`

func testConfig(s *fakeopenai.Server, log *bytes.Buffer) Config {
	c := DefaultConfig()
	c.BaseURL, c.APIKey, c.Model = s.BaseURL(), "test-key", "fake-model"
	c.Backoff, c.Timeout, c.Retries = time.Millisecond, 2*time.Second, 3
	c.Log = log
	return c
}

func TestPlannerRequestAndCache(t *testing.T) {
	s := fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: goodJSON} })
	defer s.Close()
	var log bytes.Buffer
	c := testConfig(s, &log)
	c.CacheDir = t.TempDir()
	p, err := NewOpenAI(c).Plan(context.Background(), "  a mouse hunting a lion. ")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != 2 || p.Source.Model != "fake-model" || p.Source.Cached {
		t.Fatalf("%+v", p)
	}
	req := s.Requests()[0]
	msg := req.Messages[0].Text()
	if !strings.HasSuffix(msg, "Caption: a mouse hunting a lion\nAnswer:") || !strings.Contains(string(req.ResponseFormat), "json_schema") {
		t.Fatalf("request: %q… %s", msg[len(msg)-60:], req.ResponseFormat)
	}
	// The same caption again comes from the cache: no new request.
	p, err = NewOpenAI(c).Plan(context.Background(), "a mouse hunting a lion")
	if err != nil || !p.Source.Cached || len(s.Requests()) != 1 {
		t.Fatalf("cached: %v %+v, %d requests", err, p.Source, len(s.Requests()))
	}
	// A different model is a different cache key.
	c.Model = "other"
	if _, err := NewOpenAI(c).Plan(context.Background(), "a mouse hunting a lion"); err != nil || len(s.Requests()) != 2 {
		t.Fatalf("other model: %v, %d requests", err, len(s.Requests()))
	}
}

// The cache's files keep their names and form: an entry written by an earlier
// version, at the SHA-256 of endpoint, model, template version and caption
// joined by NUL, is used; a truncated one is asked again and replaced.
func TestPlannerReadsExistingCacheEntries(t *testing.T) {
	s := fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Content: goodJSON} })
	defer s.Close()
	var log bytes.Buffer
	c := testConfig(s, &log)
	c.CacheDir = t.TempDir()
	sum := sha256.Sum256([]byte(strings.Join([]string{s.BaseURL(), c.Model, TemplateVersion, "a mouse hunting a lion"}, "\x00")))
	entry := filepath.Join(c.CacheDir, hex.EncodeToString(sum[:])+".json")
	old, _ := json.MarshalIndent(map[string]string{"Endpoint": s.BaseURL(), "Model": c.Model, "TemplateVersion": TemplateVersion,
		"Caption": "a mouse hunting a lion", "Response": goodJSON}, "", "  ")
	writeFile(t, entry, old)
	p, err := NewOpenAI(c).Plan(context.Background(), "a mouse hunting a lion")
	if err != nil || !p.Source.Cached || len(s.Requests()) != 0 {
		t.Fatalf("existing entry: %v %+v, %d requests", err, p, len(s.Requests()))
	}
	writeFile(t, entry, old[:len(old)/2])
	p, err = NewOpenAI(c).Plan(context.Background(), "a mouse hunting a lion")
	if err != nil || p.Source.Cached || len(s.Requests()) != 1 {
		t.Fatalf("truncated entry: %v %+v, %d requests", err, p, len(s.Requests()))
	}
	var e struct{ Caption, Response string }
	if raw, err := os.ReadFile(entry); err != nil || json.Unmarshal(raw, &e) != nil || e.Response != goodJSON {
		t.Fatalf("the truncated entry was not replaced: %v %q", err, raw)
	}
}

func TestPlannerRetries(t *testing.T) {
	for _, c := range []struct {
		name   string
		script []fakeopenai.Reply
		want   string // error substring; "" for success
	}{
		{"429 then success", []fakeopenai.Reply{{Status: 429}, {Status: 429}, {Content: goodJSON}}, ""},
		{"schema refused", []fakeopenai.Reply{{Status: 400}, {Content: goodJSON}}, ""},
		{"unparseable then good", []fakeopenai.Reply{{Content: "I cannot help with that."}, {Content: goodJSON}}, ""},
		{"500 forever", []fakeopenai.Reply{{Status: 500}}, "unavailable"},
		{"timeouts", []fakeopenai.Reply{{Delay: 500 * time.Millisecond, Content: goodJSON}}, "unavailable"},
		{"never parses", []fakeopenai.Reply{{Content: `{"objects": "none"}`}}, "does not parse"},
		{"401", []fakeopenai.Reply{{Status: 401}}, "401"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := fakeopenai.New(func(n int, r fakeopenai.Request) fakeopenai.Reply {
				return c.script[min(n, len(c.script)-1)]
			})
			defer s.Close()
			var log bytes.Buffer
			cfg := testConfig(s, &log)
			cfg.Timeout = 100 * time.Millisecond
			p, err := NewOpenAI(cfg).Plan(context.Background(), "a mouse hunting a lion")
			if c.want == "" {
				if err != nil || len(p.Objects) != 2 {
					t.Fatalf("%v %+v\nlog: %s", err, p, log.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if c.want == "unavailable" && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%v should wrap ErrUnavailable", err)
			}
		})
	}
}

func TestFallbackToOffline(t *testing.T) {
	s := fakeopenai.New(func(int, fakeopenai.Request) fakeopenai.Reply { return fakeopenai.Reply{Status: 503} })
	defer s.Close()
	var log bytes.Buffer
	f := Fallback{Primary: NewOpenAI(testConfig(s, &log)), Offline: Offline{}, Log: &log}
	p, err := f.Plan(context.Background(), "a mouse hunting a lion")
	if err != nil {
		t.Fatal(err)
	}
	if p.Source.Planner != "offline" || !strings.Contains(log.String(), "falling back to the offline planner") ||
		!strings.Contains(strings.Join(p.Notes, "\n"), "the LLM was unavailable") {
		t.Fatalf("%+v\nlog: %s", p, log.String())
	}
}

func TestOfflinePlanner(t *testing.T) {
	for caption, want := range map[string][]string{
		"a mouse hunting a lion":                             {"a mouse", "a lion"},
		"an octopus and a seahorse playing chess":            {"an octopus", "a seahorse"},
		"a drop of water on the International Space Station": {"a drop", "the International Space Station"},
		"fish swimming in clouds":                            nil,
	} {
		p, err := Offline{}.Plan(context.Background(), caption)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range p.Objects {
			got = append(got, o.Name)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%q: objects %q, want %q", caption, got, want)
		}
		if len(p.Objects) == 0 && p.Background != caption {
			t.Errorf("%q: background %q", caption, p.Background)
		}
	}
}

func TestPlanFileRoundTrip(t *testing.T) {
	p, _ := Offline{}.Plan(context.Background(), "a mouse hunting a lion")
	path := t.TempDir() + "/plan.json"
	if err := p.Write(path); err != nil {
		t.Fatal(err)
	}
	q, err := ReadPlan(path)
	if err != nil || q.Objects[1].Name != "a lion" {
		t.Fatalf("%v %+v", err, q)
	}
	var raw map[string]any
	data, _ := json.Marshal(q)
	json.Unmarshal(data, &raw)
	raw["version"] = 9
	data, _ = json.Marshal(raw)
	bad := t.TempDir() + "/bad.json"
	writeFile(t, bad, data)
	if _, err := ReadPlan(bad); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("version: %v", err)
	}
	writeFile(t, bad, []byte(`{"version": 1, "objects": [{"name": "a cat", "box": [400, 10, 200, 50], "descriptions": ["x"]}]}`))
	if _, err := ReadPlan(bad); err == nil || !strings.Contains(err.Error(), `"a cat"`) || !strings.Contains(err.Error(), "leaves the 512×512 canvas") {
		t.Fatalf("box: %v", err)
	}
}
