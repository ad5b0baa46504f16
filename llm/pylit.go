package llm

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// parseLiteral reads one Python literal (lists, tuples, strings, numbers, None,
// True, False), the syntax of the paper's labelled answer format. It is
// tolerant where LLM output is sloppy: an apostrophe inside a single-quoted
// string ('the cat's toy') is kept when it is not followed by a delimiter, and
// trailing commas are accepted. Lists and tuples both become []any.
func parseLiteral(s string) (any, error) {
	p := &litParser{s: s}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, p.errorf("unexpected text after the value")
	}
	return v, nil
}

type litParser struct {
	s string
	i int
}

func (p *litParser) errorf(format string, args ...any) error {
	lo, hi := max(0, p.i-30), min(len(p.s), p.i+30)
	return fmt.Errorf("%s at offset %d, near %q", fmt.Sprintf(format, args...), p.i, p.s[lo:hi])
}

func (p *litParser) space() {
	for p.i < len(p.s) && unicode.IsSpace(rune(p.s[p.i])) {
		p.i++
	}
}

func (p *litParser) value() (any, error) {
	p.space()
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '[' || c == '(':
		return p.sequence(map[byte]byte{'[': ']', '(': ')'}[c])
	case c == '\'' || c == '"' || strings.HasPrefix(p.s[p.i:], "\u201c") || strings.HasPrefix(p.s[p.i:], "\u2018"):
		return p.str()
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for word, v := range map[string]any{"None": nil, "null": nil, "True": true, "true": true, "False": false, "false": false} {
			if strings.HasPrefix(p.s[p.i:], word) {
				p.i += len(word)
				return v, nil
			}
		}
	}
	return nil, p.errorf("expected a list, tuple, string or number")
}

func (p *litParser) sequence(closer byte) (any, error) {
	p.i++ // the opener
	out := []any{}
	for {
		p.space()
		if p.i < len(p.s) && p.s[p.i] == closer {
			p.i++
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.space()
		if p.i >= len(p.s) {
			return nil, p.errorf("missing %q", closer)
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case closer:
		default:
			return nil, p.errorf("expected ',' or %q", closer)
		}
	}
}

// str reads a quoted string; curly quotes pasted from chat windows count as quotes.
func (p *litParser) str() (any, error) {
	open, close := string(p.s[p.i]), string(p.s[p.i])
	switch {
	case strings.HasPrefix(p.s[p.i:], "\u201c"):
		open, close = "\u201c", "\u201d"
	case strings.HasPrefix(p.s[p.i:], "\u2018"):
		open, close = "\u2018", "\u2019"
	}
	p.i += len(open)
	var b strings.Builder
	for p.i < len(p.s) {
		if p.s[p.i] == '\\' && p.i+1 < len(p.s) {
			esc := p.s[p.i+1]
			if r, ok := map[byte]byte{'n': '\n', 't': '\t', 'r': '\r'}[esc]; ok {
				b.WriteByte(r)
			} else {
				b.WriteByte(esc)
			}
			p.i += 2
			continue
		}
		if strings.HasPrefix(p.s[p.i:], close) && p.closes(p.i+len(close)) {
			p.i += len(close)
			return b.String(), nil
		}
		b.WriteByte(p.s[p.i])
		p.i++
	}
	return nil, p.errorf("unterminated string")
}

// closes reports whether a quote ending at j closes the string: what follows
// it (after spaces) must end a value.
func (p *litParser) closes(j int) bool {
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	return j >= len(p.s) || strings.ContainsRune(",)]}:\n\r", rune(p.s[j]))
}

func (p *litParser) number() (any, error) {
	j := p.i
	for j < len(p.s) && strings.ContainsRune("+-.0123456789eE", rune(p.s[j])) {
		j++
	}
	v, err := strconv.ParseFloat(p.s[p.i:j], 64)
	if err != nil {
		return nil, p.errorf("bad number %q", p.s[p.i:j])
	}
	p.i = j
	return v, nil
}
