package clip

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"

	"github.com/rfnet/rfnet-native/internal/regular"
)

// MaxLength is the number of token positions the text encoders take.
const MaxLength = 77

// The CLIP vocabulary's special tokens.
const (
	StartOfText = "<|startoftext|>"
	EndOfText   = "<|endoftext|>"
)

// Tokenizer is CLIP's byte-level BPE tokenizer, as open_clip's SimpleTokenizer
// and Hugging Face's CLIPTokenizer implement it; the two differ in how they cut
// a prompt around the special tokens, which Split chooses.
type Tokenizer struct {
	vocab    map[string]int32
	tokens   []string
	ranks    map[[2]string]int
	bos      int32
	eos      int32
	pad      int32
	specials []specialToken
	byteSym  [256]string
	split    Split
	cache    *wordCache
}

// wordCache holds the BPE pieces of the words seen so far; the tokenizers
// WithSplit returns share it.
type wordCache struct {
	mu     sync.Mutex
	pieces map[string][]string
}

// byteSymbols is the GPT-2/CLIP table that maps each byte to a printable rune:
// printable Latin-1 bytes map to themselves, the other 68 to U+0100, U+0101, ...
// in increasing byte order. order lists the bytes in table order (vocabulary ids 0..255).
func byteSymbols() (sym [256]string, order []byte) {
	keep := func(b int) bool {
		return ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF)
	}
	extra := 0
	var rest []byte
	for b := 0; b < 256; b++ {
		if keep(b) {
			sym[b] = string(rune(b))
			order = append(order, byte(b))
		} else {
			sym[b] = string(rune(256 + extra))
			extra++
			rest = append(rest, byte(b))
		}
	}
	return sym, append(order, rest...)
}

// LoadTokenizer reads a diffusers tokenizer/ folder (vocab.json, merges.txt and,
// when present, special_tokens_map.json for the padding token) or OpenAI's
// bpe_simple_vocab_16e6.txt(.gz). pad is the padding token to use when the files
// do not name one: "<|endoftext|>" for SD 1.x, "!" for SD 2.x. The tokenizer
// cuts prompts as diffusers does; WithSplit gives open_clip's way.
func LoadTokenizer(path, pad string) (*Tokenizer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("clip: tokenizer: %w", err)
	}
	if err := regular.Check(path); err != nil {
		return nil, fmt.Errorf("clip: tokenizer: %w", err)
	}
	var t *Tokenizer
	if fi.IsDir() {
		t, pad, err = loadFolder(path, pad)
	} else {
		t, err = loadBPEFile(path)
	}
	if err != nil {
		return nil, err
	}
	for _, special := range []string{StartOfText, EndOfText, pad} {
		if _, ok := t.vocab[special]; !ok {
			return nil, fmt.Errorf("clip: tokenizer %s: vocabulary has no %q", path, special)
		}
	}
	t.bos, t.eos, t.pad = t.vocab[StartOfText], t.vocab[EndOfText], t.vocab[pad]
	t.specials = specialTokens(t.bos, t.eos, t.pad, pad)
	return t, nil
}

func newTokenizer() *Tokenizer {
	t := &Tokenizer{vocab: map[string]int32{}, ranks: map[[2]string]int{}, cache: &wordCache{pieces: map[string][]string{}}}
	t.byteSym, _ = byteSymbols()
	return t
}

// WithSplit returns a tokenizer that cuts prompts as s says and shares t's
// vocabulary. LoadTokenizer's cuts them as diffusers does (SplitDiffusers).
func (t *Tokenizer) WithSplit(s Split) *Tokenizer {
	c := *t
	c.split = s
	return &c
}

// Split is how t cuts a prompt around its special tokens.
func (t *Tokenizer) Split() Split { return t.split }

func (t *Tokenizer) addToken(tok string) {
	t.vocab[tok] = int32(len(t.tokens))
	t.tokens = append(t.tokens, tok)
}

// loadBPEFile builds the vocabulary the way CLIP does from its merge list:
// the 256 byte symbols, the same with "</w>", one token per merge, then the two
// special tokens (49408 in all for the released file).
func loadBPEFile(path string) (*Tokenizer, error) {
	f, err := regular.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clip: tokenizer: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("clip: tokenizer %s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("clip: tokenizer %s: %w", path, err)
	}
	lines := strings.Split(string(data), "\n")
	// CLIP uses the first 49152-256-2 merges after the version line (smaller
	// test vocabularies have fewer).
	const maxMerges = 49152 - 256 - 2
	merges := min(len(lines)-1, maxMerges)
	for merges > 0 && strings.TrimSpace(lines[merges]) == "" {
		merges--
	}
	if merges < 1 {
		return nil, fmt.Errorf("clip: tokenizer %s: no merges after the version line (not a CLIP BPE file?)", path)
	}
	t := newTokenizer()
	_, order := byteSymbols()
	for _, b := range order {
		t.addToken(t.byteSym[b])
	}
	for _, b := range order {
		t.addToken(t.byteSym[b] + "</w>")
	}
	for i, line := range lines[1 : merges+1] {
		pair := strings.Fields(line)
		if len(pair) != 2 {
			return nil, fmt.Errorf("clip: tokenizer %s: line %d: %q is not a merge of two symbols", path, i+2, line)
		}
		t.ranks[[2]string{pair[0], pair[1]}] = i
		t.addToken(pair[0] + pair[1])
	}
	t.addToken(StartOfText)
	t.addToken(EndOfText)
	return t, nil
}

// loadFolder reads vocab.json and merges.txt, and the padding token from
// special_tokens_map.json when it names one.
func loadFolder(dir, pad string) (*Tokenizer, string, error) {
	vocabPath, mergesPath := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	raw, err := regular.ReadFile(vocabPath)
	if err != nil {
		return nil, "", fmt.Errorf("clip: tokenizer: %w (a tokenizer folder needs vocab.json and merges.txt)", err)
	}
	var vocab map[string]int32
	if err := json.Unmarshal(raw, &vocab); err != nil {
		return nil, "", fmt.Errorf("clip: tokenizer: %s: %w", vocabPath, err)
	}
	t := newTokenizer()
	t.tokens = make([]string, len(vocab))
	for tok, id := range vocab {
		if id < 0 || int(id) >= len(vocab) || t.tokens[id] != "" {
			return nil, "", fmt.Errorf("clip: tokenizer: %s: id %d of %q is out of range or repeated", vocabPath, id, tok)
		}
		t.tokens[id] = tok
	}
	t.vocab = vocab
	mf, err := regular.Open(mergesPath)
	if err != nil {
		return nil, "", fmt.Errorf("clip: tokenizer: %w", err)
	}
	defer mf.Close()
	sc := bufio.NewScanner(mf)
	rank, lineNo := 0, 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if lineNo == 1 && strings.HasPrefix(line, "#version") || strings.TrimSpace(line) == "" {
			continue
		}
		pair := strings.Fields(line)
		if len(pair) != 2 {
			return nil, "", fmt.Errorf("clip: tokenizer: %s:%d: %q is not a merge of two symbols", mergesPath, lineNo, line)
		}
		t.ranks[[2]string{pair[0], pair[1]}] = rank
		rank++
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("clip: tokenizer: %s: %w", mergesPath, err)
	}
	if rank == 0 { // every word would stay split into bytes: a wrong tokenization, not an error, without this
		return nil, "", fmt.Errorf("clip: tokenizer: %s holds no merges", mergesPath)
	}
	specialRaw, err := regular.ReadFile(filepath.Join(dir, "special_tokens_map.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("clip: tokenizer: %w", err)
	}
	if err == nil {
		var special struct {
			Pad json.RawMessage `json:"pad_token"`
		}
		if json.Unmarshal(specialRaw, &special) == nil && len(special.Pad) > 0 {
			var s string
			var obj struct {
				Content string `json:"content"`
			}
			if json.Unmarshal(special.Pad, &s) == nil && s != "" {
				pad = s
			} else if json.Unmarshal(special.Pad, &obj) == nil && obj.Content != "" {
				pad = obj.Content
			}
		}
	}
	return t, pad, nil
}

// Clean applies CLIP's text normalization: the parts of ftfy.fix_text that apply
// to well-formed text (full-width forms folded, latin ligatures split, curly
// quotes straightened, control characters dropped, Unicode NFC), HTML entities
// unescaped twice as open_clip does, runs of white space collapsed to one space,
// trimmed, lower-cased. ftfy's mojibake repair is not reproduced.
func Clean(text string) string {
	text = norm.NFC.String(ligatureReplacer.Replace(width.Fold.String(text)))
	text = quoteReplacer.Replace(text)
	text = html.UnescapeString(html.UnescapeString(text))
	var b strings.Builder
	for _, r := range text {
		if unicode.IsControl(r) && !isSpace(r) {
			continue
		}
		b.WriteRune(r)
	}
	return strings.ToLower(strings.Join(strings.FieldsFunc(b.String(), isSpace), " "))
}

// ligatureReplacer splits the ligatures ftfy's fix_latin_ligatures splits.
var ligatureReplacer = strings.NewReplacer("Ĳ", "IJ", "ĳ", "ij", "ŉ", "ʼn", "Ǆ", "DŽ", "ǅ", "Dž", "ǆ", "dž",
	"Ǉ", "LJ", "ǈ", "Lj", "ǉ", "lj", "Ǌ", "NJ", "ǋ", "Nj", "ǌ", "nj", "Ǳ", "DZ", "ǲ", "Dz", "ǳ", "dz",
	"ﬀ", "ff", "ﬁ", "fi", "ﬂ", "fl", "ﬃ", "ffi", "ﬄ", "ffl", "ﬅ", "ſt", "ﬆ", "st")

var quoteReplacer = strings.NewReplacer("\u2018", "'", "\u2019", "'", "\u201a", "'", "\u201b", "'",
	"\u201c", `"`, "\u201d", `"`, "\u201e", `"`, "\u201f", `"`, "\u2032", "'", "\u2033", `"`)

// isSpace is Python's str.isspace, which also counts the information separators U+001C..U+001F.
func isSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// Encode returns the BPE token ids of text, without the start and end tokens
// around it or padding after it (special tokens written in text are encoded as
// t's Split says).
func (t *Tokenizer) Encode(text string) []int32 {
	rule := splitRules[t.split]
	segments := []segment{{text: text}}
	if rule.cutRaw {
		segments = t.cutSpecial(text)
	}
	var ids []int32
	for _, seg := range segments {
		if seg.special {
			ids = append(ids, seg.id)
			continue
		}
		for _, word := range rule.words.FindAllString(Clean(seg.text), -1) {
			switch word {
			case rule.start:
				ids = append(ids, t.bos)
			case rule.end:
				ids = append(ids, t.eos)
			default:
				for _, piece := range t.bpe(word) {
					ids = append(ids, t.vocab[piece])
				}
			}
		}
	}
	return ids
}

// Tokens returns the BPE pieces of text (the vocabulary strings of Encode's ids).
func (t *Tokenizer) Tokens(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.tokens[id]
	}
	return out
}

// Tokenize returns the MaxLength ids the text encoder takes: the start token, the
// text's tokens, the end token, then padding. A text longer than 75 tokens is cut
// (the end token stays last) and truncated reports how many tokens were dropped.
func (t *Tokenizer) Tokenize(text string) (ids []int32, truncated int) {
	body := t.Encode(text)
	if len(body) > MaxLength-2 {
		truncated = len(body) - (MaxLength - 2)
		body = body[:MaxLength-2]
	}
	ids = make([]int32, 0, MaxLength)
	ids = append(ids, t.bos)
	ids = append(ids, body...)
	ids = append(ids, t.eos)
	for len(ids) < MaxLength {
		ids = append(ids, t.pad)
	}
	return ids, truncated
}

// EndID is the id of <|endoftext|>; the pooled text feature is read at its first position.
func (t *Tokenizer) EndID() int32 { return t.eos }

// bpe splits one word into vocabulary pieces by applying merges in rank order.
func (t *Tokenizer) bpe(word string) []string {
	t.cache.mu.Lock()
	cached, ok := t.cache.pieces[word]
	t.cache.mu.Unlock()
	if ok {
		return cached
	}
	var parts []string
	for _, c := range []byte(word) {
		parts = append(parts, t.byteSym[c])
	}
	parts[len(parts)-1] += "</w>"
	for len(parts) > 1 {
		best, bestRank := -1, int(^uint(0)>>1)
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := t.ranks[[2]string{parts[i], parts[i+1]}]; ok && r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := parts[best], parts[best+1]
		merged := parts[:0:0]
		for i := 0; i < len(parts); i++ {
			if i+1 < len(parts) && parts[i] == first && parts[i+1] == second {
				merged = append(merged, first+second)
				i++
			} else {
				merged = append(merged, parts[i])
			}
		}
		parts = merged
	}
	for _, p := range parts {
		if _, ok := t.vocab[p]; !ok {
			// Every byte symbol is in CLIP's vocabulary, so only a reduced test
			// vocabulary can lack a piece; fall back to the end-of-text token.
			parts = []string{EndOfText}
			break
		}
	}
	t.cache.mu.Lock()
	t.cache.pieces[word] = parts
	t.cache.mu.Unlock()
	return parts
}
