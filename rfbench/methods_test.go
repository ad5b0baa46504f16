package rfbench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// Each method's configuration turns off its parts of RFNet and nothing else,
// with the item's seeds; the old name of a renamed method is that method.
func TestMethodConfigs(t *testing.T) {
	r := &Runner{Config: rfnet.Default()}
	for _, c := range []struct {
		method                      string
		saa, reference, suppression bool
	}{
		{"sd", true, true, true},
		{"rfnet", true, true, true},
		{"rfnet-no-saa", false, true, true},
		{"rfnet-no-reference", true, false, true},
		{"rfnet-no-guidance", true, false, true},
		{"rfnet-no-suppression", true, true, false},
		{"rfnet-saa-only", true, false, false},
		{"rfnet-reference-only", false, true, false},
		{"rfnet-none", false, false, false},
	} {
		it := Item{Prompt: Prompt{ID: "p"}, Index: 3, Method: c.method, Seed: 2}
		got := r.methodConfig(it)
		if got.SAA != c.saa || got.ReferenceConstraint != c.reference || got.Suppression != c.suppression {
			t.Errorf("%s: SAA %v, reference %v, suppression %v; want %v, %v, %v", c.method,
				got.SAA, got.ReferenceConstraint, got.Suppression, c.saa, c.reference, c.suppression)
		}
		if got.BgSeed != it.BgSeed() || got.FgSeedStart != it.BgSeed()+rfnet.FgSeedOffset {
			t.Errorf("%s: seeds %d and %d, want %d and %d", c.method, got.BgSeed, got.FgSeedStart, it.BgSeed(), it.BgSeed()+rfnet.FgSeedOffset)
		}
	}
}

// ParseMethods takes every method's name; an old name is kept as given (its
// items resume an earlier run's images) with a warning naming the new one,
// and an unknown name is refused with the list to choose from.
func TestParseMethods(t *testing.T) {
	var log bytes.Buffer
	got, err := ParseMethods(strings.Join(MethodNames(), ", "), &log)
	if err != nil || strings.Join(got, ",") != strings.Join(MethodNames(), ",") || log.Len() != 0 {
		t.Fatalf("every method: %v, %v, said %q", got, err, log.String())
	}
	got, err = ParseMethods("sd,rfnet-no-guidance", &log)
	if err != nil || strings.Join(got, ",") != "sd,rfnet-no-guidance" {
		t.Fatalf("an old name: %v, %v", got, err)
	}
	if !strings.Contains(log.String(), "rfnet-no-guidance is now called rfnet-no-reference") {
		t.Errorf("an old name: said %q", log.String())
	}
	if k := Items([]Prompt{{ID: "p001"}}, got, 1)[1].Key(); k != "rfnet-no-guidance/p001-s0" {
		t.Errorf("an old name's item is %s, want it under the old name", k)
	}
	if _, err := ParseMethods("sd,rfnet-no-guide", nil); err == nil || !strings.Contains(err.Error(), `"rfnet-no-guide"`) ||
		!strings.Contains(err.Error(), strings.Join(MethodNames(), ", ")) {
		t.Errorf("an unknown name: %v", err)
	}
	if NeedsPlanner([]string{"sd"}) || !NeedsPlanner([]string{"sd", "rfnet-no-guidance"}) {
		t.Error("NeedsPlanner: plain SD plans nothing, every other method does")
	}
}

// --list-methods lists every method with what it turns off, the two
// single-part rows of the paper's ablation table among them.
func TestListMethods(t *testing.T) {
	var out bytes.Buffer
	if err := ListMethods(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(MethodNames())+1 || !strings.HasPrefix(lines[0], "method") {
		t.Fatalf("want a header and one line per method:\n%s", out.String())
	}
	for i, name := range MethodNames() {
		if f := strings.Fields(lines[i+1]); len(f) < 2 || f[0] != name {
			t.Errorf("line %d is %q, want method %s first", i+1, lines[i+1], name)
		}
	}
	for _, want := range []string{
		"rfnet-saa-only        the reference constraint, the suppression constraint",
		"rfnet-reference-only  SAA (each object's main description alone), the suppression constraint",
		"rfnet                 nothing: RFNet whole",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no line %q in\n%s", want, out.String())
		}
	}
}
