package rfnet

import (
	"slices"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/clip"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/llm"
)

func tinyTokenizer(t *testing.T) *clip.Tokenizer {
	tok, err := clip.LoadTokenizer(fixtures.Path("tokenizer", "tiny"), clip.EndOfText)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSpecPromptsAndPositions(t *testing.T) {
	tok := tinyTokenizer(t)
	p := &llm.Plan{Prompt: "x", Background: "a calm ocean at dusk", Negative: "lion",
		Objects: []llm.Object{
			{Name: "a turtle", Box: [4]float64{60, 250, 392, 200}, Descriptions: []string{"slow and ancient"}},
			{Name: "a lighthouse", Box: [4]float64{196, 40, 120, 250}, Descriptions: []string{"glowing"}},
			{Name: "a lighthouse", Box: [4]float64{20, 40, 100, 200}, Descriptions: []string{"small"}},
		}}
	s := newSpec(p, Default())
	runSAA(s.Objects, Config{}, nil)
	if err := s.buildPrompts(tok); err != nil {
		t.Fatal(err)
	}
	// Sorted by name: the two lighthouses, then the turtle.
	if s.Objects[0].Name != "a lighthouse" || s.Objects[2].Name != "a turtle" || s.Objects[1].Final != "small" {
		t.Fatalf("order %+v", s.Objects)
	}
	if s.Overall != "a calm ocean at dusk with two lighthouses glowing, a turtle slow and ancient" {
		t.Fatalf("overall %q", s.Overall)
	}
	if !strings.HasPrefix(s.OverallNegative, "lion, artifacts") || !strings.HasPrefix(s.SONegative, "lion, artifacts") {
		t.Fatalf("negatives %q %q", s.OverallNegative, s.SONegative)
	}
	// Every recorded position holds the phrase's tokens in the prompt's token sequence.
	check := func(prompt, phrase string, pos []int, word int) {
		t.Helper()
		ids := append([]int32{0}, tok.Encode(prompt)...) // position 0 is BOS
		q := tok.Encode(phrase)
		for i, p := range pos {
			if ids[p] != q[i] {
				t.Fatalf("%q in %q: position %d holds %d, want %d", phrase, prompt, p, ids[p], q[i])
			}
		}
		w := tok.Encode(strings.Fields(phrase)[len(strings.Fields(phrase))-1])
		if ids[word] != w[len(w)-1] {
			t.Fatalf("%q: word token at %d is %d, want %d", phrase, word, ids[word], w[len(w)-1])
		}
	}
	for _, o := range s.Objects {
		check(o.Prompt, o.Name, o.Tokens, o.Word)
	}
	for _, ph := range s.Phrases {
		check(s.Overall, ph.Text, ph.Tokens, ph.Word)
	}
	if s.Objects[2].Prompt != "a calm ocean at dusk with a turtle slow and ancient" {
		t.Fatalf("SO prompt %q", s.Objects[2].Prompt)
	}
}

// Descriptions are cut, word by word from the longest, until the overall prompt fits 77 tokens.
func TestSpecShortensLongDescriptions(t *testing.T) {
	tok := tinyTokenizer(t)
	long := strings.Repeat("very ", 60) + "long"
	p := &llm.Plan{Objects: []llm.Object{
		{Name: "a cat", Box: [4]float64{10, 10, 100, 100}, Descriptions: []string{long}},
		{Name: "a dog", Box: [4]float64{200, 10, 100, 100}, Descriptions: []string{"asleep"}},
	}, Background: "a room"}
	s := newSpec(p, Default())
	runSAA(s.Objects, Config{}, nil)
	if err := s.buildPrompts(tok); err != nil {
		t.Fatal(err)
	}
	if n := len(tok.Encode(s.Overall)) + 2; n > clip.MaxLength || !strings.HasSuffix(s.Overall, "a dog asleep") {
		t.Fatalf("%d tokens: %q", n, s.Overall)
	}
}

func TestPlural(t *testing.T) {
	for in, want := range map[[2]any]string{
		{"a cat", 2}: "two cats", {"a mouse", 3}: "three mice", {"an apple", 2}: "two apples",
		{"a panda bear", 2}: "two panda bears", {"a fox", 2}: "two foxes", {"a puppy", 4}: "four puppies",
		{"a boy", 2}: "two boys", {"a sheep", 11}: "11 sheep", {"the child", 2}: "two children",
	} {
		if got := countedPlural(in[0].(string), in[1].(int)); got != want {
			t.Errorf("countedPlural(%v) = %q, want %q", in, got, want)
		}
	}
}

// SAA's per-object rule joins the most similar pair, the first one winning a tie.
func TestSAAPairRule(t *testing.T) {
	// Encodings of 77 positions × 2 features: equal strings are identical vectors.
	vec := map[string][]float64{}
	set := func(s string, x, y float64) {
		v := make([]float64, 154)
		for p := 0; p < 77; p++ {
			v[2*p], v[2*p+1] = x, y
		}
		vec[s] = v
	}
	set("a", 1, 0)
	set("b", 1, 0.1)
	set("c", 0, 1)
	set("d", 1, 0)
	enc := func(s string) []float64 { return vec[s] }
	objs := []object{{Name: "x", Descs: []string{"a", "c", "b"}}, {Name: "y", Descs: []string{"a", "d", "c"}}}
	res := runSAA(objs, Config{SAA: true}, enc)
	// x: sim(a,c)=0, sim(c,b)≈0.1, sim(a,b)≈0.995 → d1, d3.
	if objs[0].Final != "a, b" || !slices.Equal(res[0].Chosen, []int{1, 3}) {
		t.Fatalf("x: %q %v %v", objs[0].Final, res[0].Chosen, res[0].Scores)
	}
	// y: sim(a,d)=1 is first → d1, d2.
	if objs[1].Final != "a, d" || !slices.Equal(res[1].Chosen, []int{1, 2}) {
		t.Fatalf("y: %q %v", objs[1].Final, res[1].Chosen)
	}
	// Cross-object: pick one candidate each, the most similar combination.
	objs = []object{{Name: "x", Descs: []string{"c", "a", "c"}}, {Name: "y", Descs: []string{"c", "c", "d"}}}
	runSAA(objs, Config{SAA: true, SAACrossObject: true}, enc)
	if objs[0].Final != "c" || objs[1].Final != "c" {
		t.Fatalf("cross: %q %q", objs[0].Final, objs[1].Final)
	}
}

// A name whose last word has no tokens (a control character) is placed by
// its last word that has some: it used to index w[-1] and panic.
func TestPositionsSkipEmptyWords(t *testing.T) {
	tok := tinyTokenizer(t)
	for _, name := range []string{"a cat \b", "a cat \x01", "a \x01 cat"} {
		pos, word, err := positions(tok, "", name)
		if err != nil || len(pos) == 0 || word != pos[len(pos)-1] {
			t.Errorf("%q: positions %v, word %d, %v", name, pos, word, err)
		}
	}
}
