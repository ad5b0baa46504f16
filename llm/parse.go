package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// reply is an LLM answer before it is checked: objects with optional boxes,
// and descriptions keyed by object name.
type reply struct {
	Objects    []replyObject
	Main       []namedText    // the main description of each object
	More       [2][]namedText // the two alternative description sets
	Background string
	Negative   string
}

type replyObject struct {
	Name string
	Box  []float64 // nil when the answer gave none
}

type namedText struct{ Name, Text string }

// ErrNoPlan is wrapped by parse errors: the answer holds no usable plan.
var ErrNoPlan = errors.New("no usable plan in the answer")

// parseReply reads an answer in JSON (as the JSON template asks, possibly
// wrapped in prose or a code fence) or in the paper's labelled text format.
func parseReply(text string) (*reply, error) {
	if start := strings.IndexByte(text, '{'); start >= 0 && !strings.Contains(text[:start], "Objects:") {
		if r, err := parseJSONReply(text[start:]); err == nil {
			return r, nil
		} else if !strings.Contains(text, "Descriptions:") {
			return nil, err
		}
	}
	return parseTextReply(text)
}

// jsonReply is the shape the JSON template asks for.
type jsonReply struct {
	Objects    []jsonObject `json:"objects"`
	Background string       `json:"background"`
	Negative   string       `json:"negative"`
}

type jsonObject struct {
	Name         string    `json:"name"`
	Box          []float64 `json:"box"`
	Description  string    `json:"description"`
	Alternatives []string  `json:"alternatives"`
}

func parseJSONReply(text string) (*reply, error) {
	var j jsonReply
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("llm: %w: the JSON answer does not parse (%v): %s", ErrNoPlan, err, Quote(text))
	}
	r := &reply{Background: strings.TrimSpace(j.Background), Negative: strings.TrimSpace(j.Negative)}
	// Some other JSON (a judge's score, an error object) decodes into an empty
	// plan: an answer is a plan only when it has the plan's keys.
	var keys map[string]json.RawMessage
	json.NewDecoder(bytes.NewReader([]byte(text))).Decode(&keys)
	if _, ok := keys["objects"]; !ok && r.Background == "" {
		return nil, fmt.Errorf("llm: %w: the JSON answer has neither \"objects\" nor \"background\": %s", ErrNoPlan, Quote(text))
	}
	for _, o := range j.Objects {
		r.Objects = append(r.Objects, replyObject{Name: o.Name, Box: o.Box})
		r.Main = append(r.Main, namedText{o.Name, o.Description})
		for k := 0; k < 2 && k < len(o.Alternatives); k++ {
			r.More[k] = append(r.More[k], namedText{o.Name, o.Alternatives[k]})
		}
	}
	return r, nil
}

// parseTextReply follows the reference parser (§3.4 of the algorithm notes):
// Objects: ... Descriptions: ... More Description: ... Background prompt: ...
// Negative prompt: ..., each value a Python literal or free text.
func parseTextReply(text string) (*reply, error) {
	if i := strings.Index(text, "Objects:"); i >= 0 {
		text = text[i+len("Objects:"):]
	}
	cut := func(s, label string) (string, string, error) {
		before, after, ok := strings.Cut(s, label)
		if !ok {
			return "", "", fmt.Errorf("llm: %w: the answer has no %q section: %s", ErrNoPlan, label, Quote(s))
		}
		if strings.Contains(after, label) {
			return "", "", fmt.Errorf("llm: %w: %q appears twice in the answer", ErrNoPlan, label)
		}
		return before, after, nil
	}
	objText, descText, err := cut(text, "Descriptions:")
	if err != nil {
		return nil, err
	}
	mainText, rest, err := cut(descText, "More Description:")
	if err != nil {
		// Answers cut short after the main descriptions still plan a scene.
		mainText, rest = descText, ""
	}
	moreText, rest, _ := strings.Cut(rest, "Background prompt:")
	bg, neg, _ := strings.Cut(rest, "Negative prompt:")
	r := &reply{Background: strings.TrimSpace(bg), Negative: strings.TrimSpace(neg)}
	if r.Negative == "None" {
		r.Negative = ""
	}
	if r.Objects, err = parseObjectList(objText); err != nil {
		return nil, fmt.Errorf("llm: %w: %w", ErrNoPlan, err)
	}
	if r.Main, err = namedTexts(strings.TrimSpace(mainText), "Descriptions"); err != nil {
		return nil, err
	}
	if moreText = strings.TrimSpace(moreText); moreText != "" {
		v, err := parseLiteral(moreText)
		if err != nil {
			return nil, fmt.Errorf("llm: %w: More Description does not parse (%v): %s", ErrNoPlan, err, Quote(moreText))
		}
		sets, _ := v.([]any)
		for k := 0; k < 2 && k < len(sets); k++ {
			set, err := namedTextList(sets[k], "More Description")
			if err != nil {
				return nil, err
			}
			r.More[k] = set
		}
	}
	return r, nil
}

// parseObjectList reads the "Objects:" value of the labelled format, which is
// also LMD's layout text: a Python list of (name, [x, y, w, h]) pairs. Blank
// text is an empty list, and so is text that does not parse but says "No
// objects", as in the reference (which looks for the words only after a
// syntax error, so an object named "No objects here" stays an object). An
// object without a box (None) keeps a nil Box for filterBoxes to drop.
func parseObjectList(text string) ([]replyObject, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	v, err := parseLiteral(text)
	if err != nil && strings.Contains(text, "No objects") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the object list does not parse (%v): %s", err, Quote(text))
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("the object list is not a list: %s", Quote(text))
	}
	var objs []replyObject
	for i, item := range list {
		pair, ok := item.([]any)
		if !ok || len(pair) < 1 {
			return nil, fmt.Errorf("object %d is not a (name, [x, y, w, h]) pair: %s", i, Quote(fmt.Sprint(item)))
		}
		name, ok := pair[0].(string)
		if !ok {
			return nil, fmt.Errorf("object %d: the name is not a string: %s", i, Quote(fmt.Sprint(item)))
		}
		o := replyObject{Name: name}
		if len(pair) > 1 {
			if box, ok := pair[1].([]any); ok {
				for _, v := range box {
					if f, ok := v.(float64); ok {
						o.Box = append(o.Box, f)
					}
				}
				if len(o.Box) != 4 {
					return nil, fmt.Errorf("object %d (%s): box %s is not [x, y, w, h]", i, Quote(name), Quote(fmt.Sprint(box)))
				}
			}
		}
		objs = append(objs, o)
	}
	return objs, nil
}

func namedTexts(text, label string) ([]namedText, error) {
	if text == "" {
		return nil, nil
	}
	v, err := parseLiteral(text)
	if err != nil {
		return nil, fmt.Errorf("llm: %w: %s does not parse (%v): %s", ErrNoPlan, label, err, Quote(text))
	}
	return namedTextList(v, label)
}

func namedTextList(v any, label string) ([]namedText, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("llm: %w: %s is not a list of (name, text) pairs: %s", ErrNoPlan, label, Quote(fmt.Sprint(v)))
	}
	var out []namedText
	for _, item := range list {
		pair, ok := item.([]any)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("llm: %w: %s: %s is not a (name, text) pair", ErrNoPlan, label, Quote(fmt.Sprint(item)))
		}
		name, ok1 := pair[0].(string)
		text, ok2 := pair[1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("llm: %w: %s: %s is not a pair of strings", ErrNoPlan, label, Quote(fmt.Sprint(item)))
		}
		out = append(out, namedText{name, text})
	}
	return out, nil
}

// Quote is s in quotes for a message, cut after maxQuoted bytes: an offending
// fragment of an answer, or a name from a plan.
func Quote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(s[cut]) { // not inside a character
			cut--
		}
		s = fmt.Sprintf("%s… (%d bytes in all)", s[:cut], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// maxQuoted bounds the text of a plan or an answer that a message repeats: a
// plan with a 340 KB name used to give a 340 KB error.
const maxQuoted = 200
