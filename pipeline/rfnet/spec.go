package rfnet

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/llm"
)

// object is one box of the plan, in the reference's order (sorted by name).
type object struct {
	Name   string
	Box    Box // where it goes in the scene
	SOBox  Box // where its single-object run draws it
	Descs  []string
	Final  string // the description SAA chose
	Prompt string // the single-object prompt, description included
	// Tokens are the name's positions in Prompt (BOS is 0) and Word the
	// position of the name's last word.
	Tokens []int
	Word   int
}

// phrase is one unique name of the overall prompt ("a cat", or "two cats" for two boxes).
type phrase struct {
	Text    string
	Objects []int // indices into spec.Objects
	Tokens  []int
	Word    int
}

// spec is everything about the prompts: the objects, the phrases, the overall
// prompt and the negative prompts.
type spec struct {
	Objects         []object
	Phrases         []phrase
	Background      string
	Overall         string
	SONegative      string
	OverallNegative string
}

// newSpec sorts the plan's objects by name (a plain, case-sensitive sort, as
// the reference does), computes the single-object boxes and groups the names
// into phrases (convert_spec, §3.6). Descriptions come later, from SAA.
func newSpec(p *llm.Plan, c Config) *spec {
	s := &spec{Background: strings.TrimSpace(p.Background)}
	objs := slices.Clone(p.Objects)
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].Name < objs[j].Name })
	for _, o := range objs {
		b := Box(o.NormalizedBox())
		so := b
		if c.SOCenterBox {
			so = b.centered(c.SOFloorPadding)
		}
		s.Objects = append(s.Objects, object{Name: o.Name, Box: b, SOBox: so, Descs: o.Descriptions})
	}
	for i, o := range s.Objects {
		if n := len(s.Phrases); n > 0 && s.Objects[s.Phrases[n-1].Objects[0]].Name == o.Name {
			s.Phrases[n-1].Objects = append(s.Phrases[n-1].Objects, i)
			continue
		}
		s.Phrases = append(s.Phrases, phrase{Text: o.Name, Objects: []int{i}})
	}
	for i := range s.Phrases {
		if n := len(s.Phrases[i].Objects); n > 1 {
			s.Phrases[i].Text = countedPlural(s.Phrases[i].Text, n)
		}
	}
	join := func(neg, def string) string {
		if neg = strings.TrimSpace(neg); neg != "" {
			return neg + ", " + def
		}
		return def
	}
	s.SONegative, s.OverallNegative = join(p.Negative, c.SONegative), join(p.Negative, c.OverallNegative)
	return s
}

// withObjects is the "<background> with " prefix before the object list.
func (s *spec) withObjects() string {
	if s.Background == "" {
		return ""
	}
	return s.Background + " with "
}

// buildPrompts writes the single-object prompts and the overall prompt with
// the chosen descriptions, and finds every phrase's token positions. Prompts
// are built from segments (§4.4's recommendation), so each phrase's position
// is known: BPE works word by word, so the tokens before a phrase are the
// tokens of the text before it.
func (s *spec) buildPrompts(tok *clip.Tokenizer) error {
	for i := range s.Objects {
		o := &s.Objects[i]
		prefix := s.withObjects()
		var err error
		if o.Tokens, o.Word, err = positions(tok, prefix, o.Name); err != nil {
			return err
		}
		o.Prompt = strings.TrimSpace(prefix + o.Name + " " + o.Final)
	}
	// The overall prompt: shorten the longest description word by word until
	// the prompt fits the 77-token window, never the phrases (§5.5).
	descs := make([]string, len(s.Phrases))
	for i, p := range s.Phrases {
		descs[i] = s.Objects[p.Objects[0]].Final
	}
	for {
		prompt, starts := s.overall(descs)
		if n := len(tok.Encode(prompt)) + 2; n <= clip.MaxLength || !shorten(descs) {
			s.Overall = prompt
			for i := range s.Phrases {
				var err error
				if s.Phrases[i].Tokens, s.Phrases[i].Word, err = positions(tok, prompt[:starts[i]], s.Phrases[i].Text); err != nil {
					return err
				}
				if last := s.Phrases[i].Tokens[len(s.Phrases[i].Tokens)-1]; last >= clip.MaxLength-1 {
					return fmt.Errorf("rfnet: the overall prompt %s is too long: %s falls past the 77-token window", llm.Quote(prompt), llm.Quote(s.Phrases[i].Text))
				}
			}
			return nil
		}
	}
}

// overall joins the background and "phrase description" segments and returns
// where each phrase starts.
func (s *spec) overall(descs []string) (string, []int) {
	var b strings.Builder
	b.WriteString(s.withObjects())
	starts := make([]int, len(s.Phrases))
	for i, p := range s.Phrases {
		if i > 0 {
			b.WriteString(", ")
		}
		starts[i] = b.Len()
		b.WriteString(p.Text)
		if descs[i] != "" {
			b.WriteString(" " + descs[i])
		}
	}
	if len(s.Phrases) == 0 {
		return s.Background, nil
	}
	return b.String(), starts
}

// shorten drops the last word of the longest description; false when none is left.
func shorten(descs []string) bool {
	longest := -1
	for i, d := range descs {
		if d != "" && (longest < 0 || len(strings.Fields(d)) > len(strings.Fields(descs[longest]))) {
			longest = i
		}
	}
	if longest < 0 {
		return false
	}
	words := strings.Fields(descs[longest])
	descs[longest] = strings.TrimRight(strings.Join(words[:len(words)-1], " "), ",;: ")
	return true
}

// positions returns the token positions of phrase when it follows prefix
// (BOS is position 0), and the position of its last word's last sub-token
// (the word token of §5.3).
func positions(tok *clip.Tokenizer, prefix, phrase string) ([]int, int, error) {
	q := tok.Encode(phrase)
	if len(q) == 0 {
		return nil, 0, fmt.Errorf("rfnet: %s has no tokens", llm.Quote(phrase))
	}
	start := 1 + len(tok.Encode(prefix))
	pos := make([]int, len(q))
	for i := range q {
		pos[i] = start + i
	}
	// The last word that has tokens: a trailing "\b" or other control
	// character is a word of strings.Fields but encodes to nothing.
	words := strings.Fields(phrase)
	for k := len(words) - 1; k >= 0; k-- {
		w := tok.Encode(words[k])
		if len(w) == 0 {
			continue
		}
		for i, id := range q {
			if id == w[len(w)-1] {
				return pos, start + i, nil
			}
		}
		break
	}
	return pos, pos[len(pos)-1], nil
}

var countWords = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}

// countedPlural is "two cats" for ("a cat", 2): the leading article goes (only
// a leading one: "panda bear" keeps its "a", §14.5), the last word is pluralized.
func countedPlural(name string, n int) string {
	words := strings.Fields(name)
	if len(words) > 1 {
		switch strings.ToLower(words[0]) {
		case "a", "an", "the", "one":
			words = words[1:]
		}
	}
	words[len(words)-1] = plural(words[len(words)-1])
	count := fmt.Sprint(n)
	if n < len(countWords) {
		count = countWords[n]
	}
	return count + " " + strings.Join(words, " ")
}

var irregular = map[string]string{"man": "men", "woman": "women", "child": "children", "mouse": "mice",
	"person": "people", "foot": "feet", "tooth": "teeth", "goose": "geese", "ox": "oxen", "louse": "lice",
	"sheep": "sheep", "fish": "fish", "deer": "deer", "moose": "moose", "leaf": "leaves", "wolf": "wolves",
	"knife": "knives", "wife": "wives", "life": "lives", "elf": "elves", "calf": "calves", "half": "halves",
	"loaf": "loaves", "thief": "thieves", "shelf": "shelves", "potato": "potatoes", "tomato": "tomatoes",
	"hero": "heroes", "cactus": "cacti"}

// plural is a small English inflection: irregular nouns, then -s/-es/-ies.
func plural(w string) string {
	lw := strings.ToLower(w)
	if p, ok := irregular[lw]; ok {
		return w[:0] + p
	}
	switch {
	case strings.HasSuffix(lw, "s"), strings.HasSuffix(lw, "x"), strings.HasSuffix(lw, "z"),
		strings.HasSuffix(lw, "ch"), strings.HasSuffix(lw, "sh"):
		return w + "es"
	case strings.HasSuffix(lw, "y") && len(lw) > 1 && !strings.ContainsRune("aeiou", rune(lw[len(lw)-2])):
		return w[:len(w)-1] + "ies"
	}
	return w + "s"
}
