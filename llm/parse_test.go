package llm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseLiteral(t *testing.T) {
	for in, want := range map[string]any{
		`[('a cat', [1, 2.5, -3, 4e1]), ("a dog", None)]`: []any{[]any{"a cat", []any{1.0, 2.5, -3.0, 40.0}}, []any{"a dog", nil}},
		`[('the cat's toy', 'it's red'),]`:                []any{[]any{"the cat's toy", "it's red"}},
		`[(“a fox”, ‘sly, quick’)]`:                       []any{[]any{"a fox", "sly, quick"}},
		`'escaped \' quote \n'`:                           "escaped ' quote \n",
		`[]`:                                              []any{},
	} {
		got, err := parseLiteral(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseLiteral(%s) = %#v, %v; want %#v", in, got, err, want)
		}
	}
	for _, bad := range []string{`[('a cat', [1, 2)`, `('unterminated`, `[1 2]`, `{x}`, `[1,] junk`} {
		if _, err := parseLiteral(bad); err == nil {
			t.Errorf("parseLiteral(%s) should fail", bad)
		}
	}
}

const textAnswer = `Objects: [('a turtle', [60, 250, 392, 200]), ('a lighthouse', [196, 40, 120, 250])]
Descriptions: [('a turtle', 'slow and ancient, shell covered in barnacles'), ('A Lighthouse', 'standing upright on the shell, beam glowing')]
More Description: [[('a turtle', 'paddling steadily through calm water'), ('a lighthouse', 'white and red striped, slightly tilted')], [('a turtle', 'enormous, half submerged'), ('a lighthouse', 'small and weathered, lamp lit')]]
Background prompt: A calm ocean at dusk
Negative prompt:`

func TestParseTextAnswer(t *testing.T) {
	r, err := parseReply(textAnswer)
	if err != nil {
		t.Fatal(err)
	}
	p, err := buildPlan("a lighthouse on a turtle", r, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if p.Background != "A calm ocean at dusk" || p.Negative != "" || len(p.Objects) != 2 {
		t.Fatalf("%+v", p)
	}
	// "A Lighthouse" in Descriptions matches "a lighthouse" by name (the reference pairs by sorted position).
	lh := p.Objects[1]
	if lh.Name != "a lighthouse" || lh.Box != [4]float64{196, 40, 120, 250} ||
		!reflect.DeepEqual(lh.Descriptions, []string{"standing upright on the shell, beam glowing", "white and red striped, slightly tilted", "small and weathered, lamp lit"}) {
		t.Fatalf("lighthouse: %+v", lh)
	}
}

func TestParseJSONAnswerInProse(t *testing.T) {
	answer := "Sure! Here is the plan:\n```json\n{\"objects\": [{\"name\": \"a mouse\", \"box\": [40, 200, 150, 150], \"description\": \"baring tiny teeth\", " +
		"\"alternatives\": [\"stalking low\", \"eyes fixed on its prey\"]}, {\"name\": \"un lion\", \"box\": [240, 120, 240, 300], " +
		"\"description\": \"cowering, ears back\", \"alternatives\": [\"backing away\"]}], \"background\": \"la savane, au crépuscule\", \"negative\": \"\"}\n```\nEnjoy."
	r, err := parseReply(answer)
	if err != nil {
		t.Fatal(err)
	}
	p, err := buildPlan("a mouse hunting a lion", r, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if p.Background != "la savane, au crépuscule" || p.Objects[1].Descriptions[2] != "cowering, ears back" {
		t.Fatalf("%+v", p)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), `"un lion" has no alternative description 2`) {
		t.Fatalf("notes %q", p.Notes)
	}
}

func TestMalformedAnswers(t *testing.T) {
	for _, c := range []struct{ name, answer, quote string }{
		{"not json", `{"objects": [ {"name": "a cat", "box": [1, 2, 3`, `the JSON answer does not parse`},
		{"no descriptions section", "Objects: [('a cat', [10, 10, 100, 100])]\nBackground prompt: a room", `no "Descriptions:" section`},
		{"bad object list", "Objects: [('a cat', [10, 10, 100)]\nDescriptions: []\nMore Description: []\nBackground prompt: x", `the object list does not parse`},
		{"box of three numbers", "Objects: [('a cat', [10, 10, 100])]\nDescriptions: [('a cat', 'x')]\nMore Description: []\nBackground prompt: x", `box "[10 10 100]" is not [x, y, w, h]`},
		{"descriptions not pairs", "Objects: [('a cat', [10, 10, 100, 100])]\nDescriptions: ['x']\nMore Description: []\nBackground prompt: x", `is not a (name, text) pair`},
		{"twice", "Objects: []\nDescriptions: []\nDescriptions: []", `appears twice`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseReply(c.answer)
			if err == nil || !errors.Is(err, ErrNoPlan) || !strings.Contains(err.Error(), c.quote) {
				t.Fatalf("error %v, want one saying %q", err, c.quote)
			}
		})
	}
}

func TestMissingSections(t *testing.T) {
	// No More Description, no background or negative: still a plan, alternatives from the main text.
	r, err := parseReply("Objects: [('a cat', [10, 10, 100, 100])]\nDescriptions: [('a cat', 'asleep')]")
	if err != nil {
		t.Fatal(err)
	}
	p, err := buildPlan("a cat", r, DefaultOptions())
	if err != nil || p.Objects[0].Descriptions[2] != "asleep" {
		t.Fatalf("%v %+v", err, p)
	}
	// "No objects" gives an empty scene.
	r, err = parseReply("Objects: No objects\nDescriptions: []\nMore Description: []\nBackground prompt: an empty beach\nNegative prompt: None")
	if err != nil {
		t.Fatal(err)
	}
	p, err = buildPlan("an empty beach", r, DefaultOptions())
	if err != nil || len(p.Objects) != 0 || p.Background != "an empty beach" || p.Negative != "" {
		t.Fatalf("%v %+v", err, p)
	}
	// The words count only where the list does not parse, as in the reference.
	objs, err := parseObjectList("[('No objects were harmed', [10, 10, 100, 100])]")
	if err != nil || len(objs) != 1 || objs[0].Name != "No objects were harmed" {
		t.Fatalf("an object named like the empty answer: %v %+v", err, objs)
	}
}

func TestFilterBoxes(t *testing.T) {
	in := []replyObject{
		{"a cat.", []float64{10, 20, 100, 100}},
		{"zero", []float64{10, 20, 0, 100}},
		{"negative", []float64{10, 20, -5, 100}},
		{"no box", nil},
		{"whole", []float64{0, 0, 512, 512}},
		{"far right", []float64{600, 20, 50, 50}},
	}
	got, notes := filterBoxes(in, DefaultOptions())
	if len(got) != 1 || got[0].Name != "a cat" || got[0].box != [4]float64{10, 20, 100, 100} || len(notes) != 5 {
		t.Fatalf("%+v %q", got, notes)
	}
	// A box past the edge switches scaling on for all: shift to x=0, scale by min(512/(R-L), 512/(B-T), 3).
	got, _ = filterBoxes([]replyObject{{"a", []float64{100, 100, 200, 100}}, {"b", []float64{300, 150, 300, 100}}}, DefaultOptions())
	// L=100, R=600, T=100, B=250: scale = min(512/500, 512/150, 3) = 1.024.
	want := [][4]float64{{0, 102, 205, 102}, {205, 154, 307, 102}}
	for i := range want {
		if got[i].box != want[i] {
			t.Fatalf("box %d: %v, want %v", i, got[i].box, want[i])
		}
	}
	// With scaling on, small layouts grow up to 3×.
	o := DefaultOptions()
	o.ScaleBoxes = true
	got, _ = filterBoxes([]replyObject{{"a", []float64{200, 200, 50, 50}}}, o)
	// scale 3: x = (200-200)·3 = 0, y = 600; the bottom B·3 = 750 passes the edge, so y moves up by 238.
	if got[0].box != [4]float64{0, 362, 150, 150} {
		t.Fatalf("scaled box %v", got[0].box)
	}
}

func TestObjectCapAndDuplicates(t *testing.T) {
	r := &reply{}
	for i := 0; i < 8; i++ {
		r.Objects = append(r.Objects, replyObject{"a cat", []float64{float64(10 * i), 10, 50, 50}})
		r.Main = append(r.Main, namedText{"a cat", "cat number " + string(rune('0'+i))})
	}
	p, err := buildPlan("eight cats", r, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != 6 || p.Objects[5].Descriptions[0] != "cat number 5" || !strings.Contains(strings.Join(p.Notes, "\n"), "kept the first 6 of 8") {
		t.Fatalf("%+v", p)
	}
}

// FuzzParseReply: any text gives a plan or an error, never a panic.
func FuzzParseReply(f *testing.F) {
	f.Add(textAnswer)
	f.Add(`{"objects": [{"name": "a cat", "box": [1, 2, 3, 4], "description": "x", "alternatives": ["y", "z"]}], "background": "", "negative": ""}`)
	f.Add("Objects: [('a cat', [10, 10, 100, 100])]\nDescriptions: [('a cat', 'it's')]\nMore Description: [[], []]\nBackground prompt: \nNegative prompt: None")
	f.Fuzz(func(t *testing.T, answer string) {
		r, err := parseReply(answer)
		if err != nil {
			return
		}
		if p, err := buildPlan("fuzz", r, DefaultOptions()); err == nil {
			if err := p.Check(); err != nil {
				t.Fatalf("buildPlan returned a plan that fails Check: %v", err)
			}
		}
	})
}

// JSON that is not a plan (here a judge's answer) is no plan, not an empty one.
func TestParseJSONThatIsNotAPlan(t *testing.T) {
	for _, answer := range []string{`{"score": 73, "explanation": "fine"}`, `{"error": {"message": "overloaded"}}`} {
		if _, err := parseReply(answer); !errors.Is(err, ErrNoPlan) {
			t.Errorf("%s: %v, want ErrNoPlan", answer, err)
		}
	}
	if r, err := parseReply(`{"objects": [], "background": "a quiet beach"}`); err != nil || r.Background != "a quiet beach" {
		t.Errorf("a plan with no objects: %+v, %v", r, err)
	}
}
