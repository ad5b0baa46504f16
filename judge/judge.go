package judge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/rfnet/rfnet-native/internal/answercache"
	"github.com/rfnet/rfnet-native/llm"
)

// ProtocolVersion names the wording below; it is part of the answer cache key.
const ProtocolVersion = "rfnet-native/judge-1"

// Our wording of the protocol of §12.2 of the algorithm notes.
const (
	systemPrompt  = "You are an evaluator. You judge how well an image corresponds to a text prompt."
	describeTurn  = "Describe this image briefly, in at most 50 words. Focus on the objects and their attributes (color, shape, texture), how they are arranged in space, and what they are doing to each other."
	rateTurnIntro = "Based on the image and your description, rate how well the image matches this text prompt: \"%s\"\n\n" +
		"Use a scale from 0 to 100:\n" +
		"100: a perfect match, nothing differs.\n" +
		"80: most of the actions, events and relationships are shown; small differences.\n" +
		"60: some elements are shown, but key parts or details are missing.\n" +
		"40: none of the actions or events in the text are shown.\n" +
		"20: the image does not convey the scope of the prompt.\n\n" +
		"Answer with JSON only, in this form: {\"score\": 85, \"explanation\": \"at most 20 words\"}"
)

// Answer is what a judge said about one image.
type Answer struct {
	Description string   `json:"description"`
	Reply       string   `json:"reply,omitempty"`       // the raw rating reply (GPT4Score)
	Score       *float64 `json:"score,omitempty"`       // in [0, 1]
	Explanation string   `json:"explanation,omitempty"` // the judge's reason (GPT4Score)
}

// Judge scores an image against its prompt.
type Judge interface {
	Name() string
	Score(ctx context.Context, prompt string, png []byte) (Answer, error)
}

// Config configures the vision model and the answer cache.
type Config struct {
	Chat     llm.Config
	CacheDir string // answers by judge, protocol, model, endpoint, image and prompt; "" for none
}

// chatJudge holds what both judges share: the client and the cache.
type chatJudge struct {
	chat  *llm.Chat
	cache answercache.Cache
}

func newChatJudge(c Config) chatJudge {
	cc := c.Chat
	if cc.MaxTokens == 0 || cc.MaxTokens > 300 {
		cc.MaxTokens = 300 // at most 300 output tokens per turn, as the reference asks
	}
	return chatJudge{chat: llm.NewChat(cc), cache: answercache.New(c.CacheDir)}
}

func imagePart(png []byte) openai.ChatMessagePart {
	return openai.ChatMessagePart{Type: openai.ChatMessagePartTypeImageURL, ImageURL: &openai.ChatMessageImageURL{
		URL: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png), Detail: openai.ImageURLDetailAuto}}
}

// describe is turn 1: the image and the request for a short description.
func (j chatJudge) describe(ctx context.Context, png []byte) ([]openai.ChatCompletionMessage, string, error) {
	msgs := []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: systemPrompt},
		{Role: openai.ChatMessageRoleUser, MultiContent: []openai.ChatMessagePart{{Type: openai.ChatMessagePartTypeText, Text: describeTurn}, imagePart(png)}},
	}
	desc, err := j.chat.Complete(ctx, openai.ChatCompletionRequest{Messages: msgs, MaxTokens: 300})
	if err != nil {
		return nil, "", err
	}
	return append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: desc}), strings.TrimSpace(desc), nil
}

// cached runs ask unless the cache has the answer for this key; only
// successful answers are cached.
func (j chatJudge) cached(name, prompt string, png []byte, ask func() (Answer, error)) (Answer, error) {
	img := sha256.Sum256(png)
	// The empty last part ends the key's text with a NUL after the prompt, as
	// every part had one when the judges hashed their own keys: the entries
	// already on disk keep their names.
	key := answercache.Key(name, ProtocolVersion, j.chat.Endpoint(), j.chat.Model(), hex.EncodeToString(img[:]), prompt, "")
	// An entry holding a score outside [0, 1] (written by hand, or by a bug)
	// is asked again and replaced, as one that does not decode is.
	var a Answer
	if j.cache.Load(key, &a) && (a.Score == nil || validScore(*a.Score)) {
		return a, nil
	}
	a, err := ask()
	if err == nil {
		// A cache that cannot be written costs a request on a later run, not this item.
		j.cache.Store(key, a)
	}
	return a, err
}

// validScore reports whether s is a score a judge may give: a number in [0, 1].
func validScore(s float64) bool { return s >= 0 && s <= 1 } // false for NaN

// GPT4Score is the two-turn describe-then-rate judge; the score is the rating / 100.
type GPT4Score struct{ chatJudge }

// NewGPT4Score returns the judge for c.
func NewGPT4Score(c Config) *GPT4Score { return &GPT4Score{newChatJudge(c)} }

// Name is "gpt4score".
func (*GPT4Score) Name() string { return "gpt4score" }

// Score runs both turns.
func (g *GPT4Score) Score(ctx context.Context, prompt string, png []byte) (Answer, error) {
	return g.cached(g.Name(), prompt, png, func() (Answer, error) {
		msgs, desc, err := g.describe(ctx, png)
		if err != nil {
			return Answer{}, err
		}
		msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: fmt.Sprintf(rateTurnIntro, prompt)})
		reply, err := g.chat.Complete(ctx, openai.ChatCompletionRequest{Messages: msgs, MaxTokens: 300})
		if err != nil {
			return Answer{Description: desc}, err
		}
		score, expl, err := ParseRating(reply)
		a := Answer{Description: desc, Reply: reply, Explanation: expl}
		if err != nil {
			return a, err
		}
		s := score / 100
		a.Score = &s
		return a, nil
	})
}

// scoreField is a "score: N" in prose. The number is taken whole, with its
// sign, fraction and exponent, and a scale after it ("/ 10", "out of 10") is
// captured, so that 1e3 is not read as 1 and 8/10 is not read as 8 of 100.
var scoreField = regexp.MustCompile(`(?i)"?score"?\s*[:=]\s*"?([-+]?[0-9]+(?:\.[0-9]*)?(?:e[-+]?[0-9]+)?)("?\s*(?:/|out\s+of)\s*([0-9.]+))?`)

// ParseRating reads {"score": N, "explanation": "..."} from a reply: the
// reference takes the text from the first '{' to the first '}' with newlines
// as spaces, which also gets past prose and code fences; failing that, a
// "score: N" in the text is accepted. The score must lie in [0, 100]: one
// outside, or one on another scale ("8/10"), is an error, never clamped or
// rescaled, so the item is recorded as failed rather than scored wrongly.
func ParseRating(reply string) (score float64, explanation string, err error) {
	var r struct {
		Score       json.RawMessage `json:"score"`
		Explanation string          `json:"explanation"`
	}
	found := false
	if i := strings.IndexByte(reply, '{'); i >= 0 {
		if j := strings.IndexByte(reply[i:], '}'); j >= 0 {
			obj := strings.ReplaceAll(reply[i:i+j+1], "\n", " ")
			if json.Unmarshal([]byte(obj), &r) == nil && len(r.Score) > 0 {
				s := strings.Trim(string(r.Score), `"`)
				if v, err := strconv.ParseFloat(s, 64); err == nil {
					score, explanation, found = v, r.Explanation, true
				}
			}
		}
	}
	if !found {
		if m := scoreField.FindStringSubmatch(reply); m != nil {
			if m[2] != "" && m[3] != "100" {
				return 0, "", fmt.Errorf("judge: score %s%s is on another scale than 0-100 in %q", m[1], m[2], truncate(reply))
			}
			var err error
			if score, err = strconv.ParseFloat(m[1], 64); err != nil {
				return 0, "", fmt.Errorf("judge: score %s outside 0-100 in %q", m[1], truncate(reply))
			}
			found = true
		}
	}
	if !found {
		return 0, "", fmt.Errorf("judge: no score in the reply %q", truncate(reply))
	}
	if math.IsNaN(score) || score < 0 || score > 100 {
		return 0, "", fmt.Errorf("judge: score %v outside 0-100 in %q", score, truncate(reply))
	}
	return score, explanation, nil
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// GPT4CLIP scores the CLIP text similarity between the judge's description of
// the image and the prompt.
type GPT4CLIP struct {
	chatJudge
	embed func(text string) []float64
}

// NewGPT4CLIP returns the judge; embed gives a text's CLIP feature (see CLIPScore).
func NewGPT4CLIP(c Config, embed func(string) []float64) *GPT4CLIP {
	return &GPT4CLIP{chatJudge: newChatJudge(c), embed: embed}
}

// Name is "gpt4clip".
func (*GPT4CLIP) Name() string { return "gpt4clip" }

// Score describes the image (turn 1 of GPT4Score) and compares the texts.
func (g *GPT4CLIP) Score(ctx context.Context, prompt string, png []byte) (Answer, error) {
	a, err := g.cached(g.Name(), prompt, png, func() (Answer, error) {
		_, desc, err := g.describe(ctx, png)
		if err != nil {
			return Answer{}, err
		}
		if desc == "" {
			return Answer{}, fmt.Errorf("judge: the description is empty")
		}
		return Answer{Description: desc}, nil
	})
	if err != nil {
		return a, err
	}
	s := CLIPScore(g.embed(a.Description), g.embed(prompt))
	if !validScore(s) {
		return a, fmt.Errorf("judge: CLIP similarity %v is not a number from 0 to 1 (a text feature holds NaN or Inf)", s)
	}
	a.Score = &s
	return a, nil
}

// CLIPScore is GPT4-CLIP's score: the cosine similarity of two text features,
// clamped at 0. A feature is the text encoder's last hidden state (after the
// final layer norm) at the first end-of-text token, the pooled output of
// Hugging Face's CLIPTextModel (for SD 1.x, CLIP ViT-L/14's text feature
// before its projection; for SD 2.x, OpenCLIP ViT-H/14's penultimate layer).
func CLIPScore(a, b []float64) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	if na == 0 || nb == 0 {
		return 0
	}
	// A cosine is at most 1; rounding can put it an ulp above.
	return math.Min(1, math.Max(0, dot/math.Sqrt(na*nb)))
}
