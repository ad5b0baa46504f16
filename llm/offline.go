package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Offline plans without a language model: it takes the noun phrases that start
// with an article or a number ("a mouse", "the moon", "two cats"), places them
// side by side, and describes each by the words that follow it in the caption.
// It is a fallback so that a command still produces an image; an LLM plans far
// better scenes.
type Offline struct{ MaxObjects int }

// offlineMaxObjects is the most phrases the offline planner places.
const offlineMaxObjects = 3

var phraseStart = map[string]bool{"a": true, "an": true, "the": true, "one": true, "two": true, "three": true,
	"four": true, "five": true, "some": true, "several": true, "many": true}

var phraseStop = map[string]bool{"in": true, "on": true, "at": true, "of": true, "with": true, "by": true, "and": true,
	"under": true, "over": true, "near": true, "from": true, "into": true, "to": true, "is": true, "are": true,
	"was": true, "were": true, "while": true, "as": true, "for": true, "through": true, "across": true, "inside": true,
	"outside": true, "behind": true, "beside": true, "between": true, "above": true, "below": true, "around": true,
	"during": true, "after": true, "before": true, "onto": true, "like": true, "than": true, "who": true, "that": true}

// Plan builds the offline plan.
func (o Offline) Plan(_ context.Context, caption string) (*Plan, error) {
	caption = CleanCaption(caption)
	words := strings.Fields(caption)
	type span struct{ start, end int }
	var spans []span
	for i := 0; i < len(words); i++ {
		if !phraseStart[strings.ToLower(words[i])] {
			continue
		}
		j := i + 1
		for j < len(words) && !phraseStop[strings.ToLower(strings.Trim(words[j], ",;:!?"))] && !phraseStart[strings.ToLower(words[j])] &&
			!looksLikeVerb(strings.ToLower(words[j])) {
			j++
			if strings.ContainsAny(words[j-1], ",;:!?") {
				break
			}
		}
		if j > i+1 {
			spans = append(spans, span{i, j})
		}
		i = j - 1
	}
	p := &Plan{Version: PlanVersion, Prompt: caption, Source: &Source{Planner: "offline"},
		Notes: []string{"planned offline (no LLM): objects are the caption's noun phrases, side by side"}}
	// Side by side, more than offlineMaxObjects columns get too narrow for an object.
	limit := offlineMaxObjects
	if o.MaxObjects > 0 {
		limit = min(limit, o.MaxObjects)
	}
	names := make([]string, len(spans))
	for k, s := range spans {
		names[k] = strings.Trim(strings.Join(words[s.start:s.end], " "), ",;:!?")
	}
	if keep, note := capObjects(limit, names); note != "" {
		spans = spans[:keep]
		p.Notes = append(p.Notes, note)
	}
	if len(spans) == 0 {
		p.Background = caption
		p.Notes = append(p.Notes, "no noun phrases found: the caption is the background prompt")
		return p, nil
	}
	n := len(spans)
	col := float64(Canvas) / float64(n)
	for k, s := range spans {
		name := strings.Trim(strings.Join(words[s.start:s.end], " "), ",;:!?")
		next := len(words)
		if k+1 < n {
			next = spans[k+1].start
		}
		desc := strings.Trim(strings.Join(words[s.end:next], " "), " ,;:!?")
		box := [4]float64{float64(k)*col + 16, 96, col - 32, 352}
		p.Objects = append(p.Objects, Object{Name: name, Box: box, Descriptions: []string{desc, desc, desc}})
	}
	return p, p.Check()
}

// looksLikeVerb guesses participles ("hunting", "chased") without a dictionary.
func looksLikeVerb(w string) bool {
	return strings.HasSuffix(w, "ing") || (len(w) > 4 && strings.HasSuffix(w, "ed"))
}

// Fallback plans with Primary and, when its endpoint is unavailable, with
// Offline, saying so in the plan's notes and on Log.
type Fallback struct {
	Primary Planner
	Offline Planner
	Log     io.Writer
}

// Plan tries the primary planner first.
func (f Fallback) Plan(ctx context.Context, caption string) (*Plan, error) {
	p, err := f.Primary.Plan(ctx, caption)
	if err == nil || !errors.Is(err, ErrUnavailable) {
		return p, err
	}
	if f.Log != nil {
		fmt.Fprintf(f.Log, "rfnet-native: llm: %v\nrfnet-native: llm: falling back to the offline planner\n", err)
	}
	p, oerr := f.Offline.Plan(ctx, caption)
	if oerr != nil {
		return nil, errors.Join(err, oerr)
	}
	p.Notes = append(p.Notes, fmt.Sprintf("the LLM was unavailable (%v); this is the offline plan", err))
	return p, nil
}
