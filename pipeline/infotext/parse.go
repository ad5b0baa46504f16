package infotext

import (
	"fmt"
	"regexp"
	"strings"
)

// Parsed is a parameters text as A1111 reads it.
type Parsed struct {
	Prompt         string
	NegativePrompt string
	// Fields are the pairs of the parameters line in their order, unquoted.
	// A key that comes twice keeps its first place and its last value, as in
	// A1111's dict.
	Fields Fields
}

// Field is one "Key: value" pair, the value unquoted.
type Field struct{ Key, Value string }

// Fields are pairs in the order of the text.
type Fields []Field

// Get returns the value of key.
func (f Fields) Get(key string) (string, bool) {
	for _, x := range f {
		if x.Key == key {
			return x.Value, true
		}
	}
	return "", false
}

func (f *Fields) set(key, value string) {
	for i := range *f {
		if (*f)[i].Key == key {
			(*f)[i].Value = value
			return
		}
	}
	*f = append(*f, Field{key, value})
}

// MarshalJSON writes the fields as one JSON object, keys in their order.
func (f Fields) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, x := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsonString(x.Key) + ":" + jsonString(x.Value))
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// paramPattern is A1111's re_param, one match per pair: a key (a word
// character, then word characters, spaces, dashes or slashes), a colon, and
// a value that is either a JSON string followed by a comma or the end, or
// everything up to the next comma. Python's \w and \s know Unicode where Go's
// know ASCII only, hence the spelled-out classes.
var paramPattern = func() *regexp.Regexp {
	space := pySpaceClass()
	word := `\p{L}\p{N}_`
	return regexp.MustCompile(fmt.Sprintf(`[%[1]s]*([%[2]s][%[2]s \-/]+):[%[1]s]*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`, space, word))
}()

// pySpaceClass is the inside of a character class holding what pyIsSpace
// accepts (all of it lies in the Basic Multilingual Plane).
func pySpaceClass() string {
	var b strings.Builder
	for r := rune(0); r <= 0xffff; r++ {
		if pyIsSpace(r) {
			fmt.Fprintf(&b, `\x{%x}`, r)
		}
	}
	return b.String()
}

// Parse reads a parameters text as A1111's parse_generation_parameters does.
// The last line is the parameters line when the pattern finds at least three
// pairs in it; otherwise it belongs to the prompt. The lines before it, each
// trimmed, are the prompt up to one that starts with "Negative prompt:", the
// negative prompt from there. A pair whose value is empty is dropped (A1111
// fails on it and skips it).
func Parse(text string) Parsed {
	lines := strings.Split(pyStrip(text), "\n")
	last := lines[len(lines)-1]
	lines = lines[:len(lines)-1]
	pairs := paramPattern.FindAllStringSubmatch(last, -1)
	if len(pairs) < 3 {
		lines, pairs = append(lines, last), nil
	}
	var p Parsed
	negative := false
	for _, line := range lines {
		line = pyStrip(line)
		if rest, ok := strings.CutPrefix(line, "Negative prompt:"); ok {
			negative, line = true, pyStrip(rest)
		}
		if negative {
			p.NegativePrompt = joinLine(p.NegativePrompt, line)
		} else {
			p.Prompt = joinLine(p.Prompt, line)
		}
	}
	for _, m := range pairs {
		key, value := m[1], m[2]
		if value == "" {
			continue
		}
		p.Fields.set(key, unquote(value))
	}
	return p
}

// joinLine appends line to text on a line of its own; an empty text takes the
// line as it is (so empty lines before the first are lost, as in A1111).
func joinLine(text, line string) string {
	if text == "" {
		return line
	}
	return text + "\n" + line
}
