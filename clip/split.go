package clip

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Split is how a tokenizer cuts a prompt around its special tokens before
// cleaning and BPE. The two CLIP tokenizers Stable Diffusion meets differ only
// there, and only visibly for SD 2.x, whose padding token "!" is ordinary text.
// The zero value is diffusers'.
type Split int

const (
	// SplitDiffusers is transformers' CLIPTokenizer, which diffusers' pipelines
	// tokenize with: every occurrence of a special token its tokenizer/ folder
	// names (<|startoftext|>, <|endoftext|> and the padding token) is cut out of
	// the raw prompt as that token, and each piece between is cleaned and
	// BPE-encoded on its own. With SD 2.x's padding "!" every "!" is token 0,
	// wherever it stands: "! !! !!!" is 0 0 0 0 0 0, "hello!world" is
	// hello 0 world, and a full-width "！" (not cut, then folded by cleaning) is "!</w>".
	SplitDiffusers Split = iota
	// SplitOpenCLIP is open_clip's SimpleTokenizer, which SD 2.x's text encoder
	// was trained with: nothing is cut from the raw prompt, so "!" runs are
	// BPE words like other punctuation ("! !! !!!" is 256 748 995), and its own
	// special tokens are spelled <start_of_text> and <end_of_text>, so a literal
	// <|endoftext|> in a prompt is text.
	SplitOpenCLIP
)

var splitNames = [...]string{SplitDiffusers: "diffusers", SplitOpenCLIP: "open-clip"}

// String is the split's name, as ParseSplit reads it.
func (s Split) String() string {
	if s < 0 || int(s) >= len(splitNames) {
		return fmt.Sprintf("Split(%d)", int(s))
	}
	return splitNames[s]
}

// ParseSplit reads a split's name: diffusers or open-clip.
func ParseSplit(name string) (Split, error) {
	for s, n := range splitNames {
		if name == n {
			return Split(s), nil
		}
	}
	return 0, fmt.Errorf("clip: tokenizer split %q: want %s", name, strings.Join(splitNames[:], " or "))
}

// wordTail is what both tokenizers' word patterns match after the special
// tokens: English contractions, letter runs, single digits, and runs of other
// non-space characters.
const wordTail = `'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`

// splitRule is what a Split decides: whether the special tokens are cut out
// of the raw prompt, and how cleaned text is split into words, the special
// tokens (spelled start and end) first.
type splitRule struct {
	cutRaw     bool
	words      *regexp.Regexp
	start, end string
}

var splitRules = [...]splitRule{
	SplitDiffusers: {cutRaw: true, start: StartOfText, end: EndOfText,
		words: regexp.MustCompile(`<\|startoftext\|>|<\|endoftext\|>|` + wordTail)},
	SplitOpenCLIP: {start: "<start_of_text>", end: "<end_of_text>",
		words: regexp.MustCompile(`<start_of_text>|<end_of_text>|` + wordTail)},
}

// segment is a piece of a prompt: text to clean and encode, or a special
// token cut out of it.
type segment struct {
	text    string
	special bool
	id      int32
}

// specialToken is a special token as it is cut out of a raw prompt.
type specialToken struct {
	text string
	id   int32
}

// specialTokens lists the tokens SplitDiffusers cuts out (start, end and
// padding, once each), longest first, so that of two starting at the same
// byte the longer is cut.
func specialTokens(bos, eos, pad int32, padText string) []specialToken {
	out := []specialToken{{StartOfText, bos}, {EndOfText, eos}}
	if padText != StartOfText && padText != EndOfText {
		out = append(out, specialToken{padText, pad})
	}
	slices.SortStableFunc(out, func(a, b specialToken) int { return cmp.Compare(len(b.text), len(a.text)) })
	return out
}

// cutSpecial cuts text around every occurrence of the special tokens, the
// leftmost first, as transformers' Trie.split does before any cleaning. The
// text between two special tokens is kept as it is: each piece is cleaned on
// its own, so the white space next to a special token is dropped there.
func (t *Tokenizer) cutSpecial(text string) []segment {
	var out []segment
	start := 0
	for i := 0; i < len(text); {
		tok, ok := t.specialAt(text[i:])
		if !ok {
			i++
			continue
		}
		if start < i {
			out = append(out, segment{text: text[start:i]})
		}
		out = append(out, segment{special: true, id: tok.id})
		i += len(tok.text)
		start = i
	}
	if start < len(text) {
		out = append(out, segment{text: text[start:]})
	}
	return out
}

// specialAt is the special token text starts with, if any.
func (t *Tokenizer) specialAt(text string) (specialToken, bool) {
	for _, s := range t.specials {
		if strings.HasPrefix(text, s.text) {
			return s, true
		}
	}
	return specialToken{}, false
}
