package infotext

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// quote is a value as it follows "Key: " on the parameters line. A1111's
// quote JSON-encodes a value that holds a comma, a colon or a newline, which
// would otherwise end it early or break the line. This one also encodes the
// values A1111 would write bare and then read back changed: the empty value
// (its parser drops the key), one that starts with a double quote (its parser
// decodes it as JSON) and one that starts or ends with white space (its parser
// trims that). Every other value, among them the numbers, names and hashes
// A1111 writes, comes out as A1111 writes it.
func quote(value string) string {
	if value == "" || strings.ContainsAny(value, ",:\n") || value[0] == '"' || startsOrEndsWithSpace(value) {
		return jsonString(value)
	}
	return value
}

func startsOrEndsWithSpace(s string) bool {
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return pyIsSpace(first) || pyIsSpace(last)
}

// jsonString is Python's json.dumps(s, ensure_ascii=False), which A1111's
// quote calls: the two-letter escapes for ", \, \n, \r, \t, \b and \f, \u00xx
// (lowercase hex) for the other control characters, every other character as
// it is. Invalid UTF-8 becomes U+FFFD (a Python string cannot hold it).
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// unquote is A1111's unquote: a value that starts and ends with a double
// quote is decoded as a JSON string; when it is not one, it stays as it is.
func unquote(value string) string {
	if len(value) == 0 || value[0] != '"' || value[len(value)-1] != '"' {
		return value
	}
	var s string
	if err := json.Unmarshal([]byte(value), &s); err != nil {
		return value
	}
	return s
}

// pyIsSpace is Python's str.isspace for one character, what A1111's strip()
// and \s go by: Go's unicode.IsSpace and the separators U+001C to U+001F.
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }

// pyStrip is Python's str.strip().
func pyStrip(s string) string { return strings.TrimFunc(s, pyIsSpace) }
