package clip

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// bangRow is one prompt of testdata/tokenizer/bang_ids.json, which
// testdata/gen/make_tokenizer_bang.py writes: its 77 ids from transformers'
// CLIPTokenizer (what diffusers uses) on SD 2.x and SD 1.x tokenizer folders,
// and from open_clip's tokenize() (SD 2.x's padding).
type bangRow struct {
	Prompt       string  `json:"prompt"`
	DiffusersSD2 []int32 `json:"diffusers_sd2"`
	OpenCLIPSD2  []int32 `json:"open_clip_sd2"`
	DiffusersSD1 []int32 `json:"diffusers_sd1"`
}

// bangRows reads the rows of one vocabulary ("tiny" or "released").
func bangRows(t *testing.T, vocabulary string) []bangRow {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path("tokenizer", "bang_ids.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	var rows []bangRow
	if err := json.Unmarshal(file[vocabulary], &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 60 {
		t.Fatalf("%s: %d prompts, want at least 60", vocabulary, len(rows))
	}
	return rows
}

// tokenizerCase is a tokenizer to check against one column of bang_ids.json.
type tokenizerCase struct {
	path, pad string
	split     Split
	want      func(bangRow) []int32
}

func (c tokenizerCase) String() string {
	return fmt.Sprintf("%s/%s/pad %q/%s", filepath.Base(filepath.Dir(c.path)), filepath.Base(c.path), c.pad, c.split)
}

// checkBang compares every prompt's ids with the reference column each case names.
func checkBang(t *testing.T, rows []bangRow, cases []tokenizerCase) {
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			tok, err := LoadTokenizer(c.path, c.pad)
			if err != nil {
				t.Fatal(err)
			}
			tok = tok.WithSplit(c.split)
			for _, r := range rows {
				if got, want := tokenizeAll(tok, r.Prompt), c.want(r); !slices.Equal(got, want) {
					t.Errorf("%q\n got %v\nwant %v", r.Prompt, got, want)
				}
			}
		})
	}
}

func tokenizeAll(tok *Tokenizer, text string) []int32 {
	ids, _ := tok.Tokenize(text)
	return ids
}

var (
	diffusersSD2 = func(r bangRow) []int32 { return r.DiffusersSD2 }
	openCLIPSD2  = func(r bangRow) []int32 { return r.OpenCLIPSD2 }
	diffusersSD1 = func(r bangRow) []int32 { return r.DiffusersSD1 }
)

// The splitting rule on the tiny vocabulary, which needs no download: SD 2.x's
// tokenizer folder (special_tokens_map.json names "!") and the merges file with
// "!" passed in give diffusers' ids by default and open_clip's with
// SplitOpenCLIP; SD 1.x's padding is cut like the other special tokens.
func TestSplitMatchesReferenceTiny(t *testing.T) {
	gz := fixtures.Path("tokenizer", "tiny", "bpe_tiny.txt.gz")
	sd2Folder := fixtures.Path("models", "tiny-sd2", "tokenizer") // the tiny vocabulary with SD 2.x's special tokens
	checkBang(t, bangRows(t, "tiny"), []tokenizerCase{
		{sd2Folder, "(from special_tokens_map.json)", SplitDiffusers, diffusersSD2},
		{gz, "!", SplitDiffusers, diffusersSD2},
		{sd2Folder, "(from special_tokens_map.json)", SplitOpenCLIP, openCLIPSD2},
		{gz, "!", SplitOpenCLIP, openCLIPSD2},
		{fixtures.Path("tokenizer", "tiny"), "(from special_tokens_map.json)", SplitDiffusers, diffusersSD1},
		{gz, EndOfText, SplitDiffusers, diffusersSD1},
	})
}

// The same with the released vocabulary (RFNET_CLIP_VOCAB), where "!!" and
// "!!!" are words of their own for open_clip.
func TestSplitMatchesReferenceReleased(t *testing.T) {
	dir := realVocabulary(t)
	gz := filepath.Join(dir, "bpe_simple_vocab_16e6.txt.gz")
	checkBang(t, bangRows(t, "released"), []tokenizerCase{
		{gz, "!", SplitDiffusers, diffusersSD2},
		{gz, "!", SplitOpenCLIP, openCLIPSD2},
		{filepath.Join(dir, "tokenizer"), "(from special_tokens_map.json)", SplitDiffusers, diffusersSD1},
		{gz, EndOfText, SplitDiffusers, diffusersSD1},
	})
}

// The two splits share one vocabulary and cache, and the tokenizer
// LoadTokenizer returns is diffusers'.
func TestWithSplit(t *testing.T) {
	tok, err := LoadTokenizer(fixtures.Path("tokenizer", "tiny", "bpe_tiny.txt.gz"), "!")
	if err != nil {
		t.Fatal(err)
	}
	open := tok.WithSplit(SplitOpenCLIP)
	if tok.Split() != SplitDiffusers || open.Split() != SplitOpenCLIP {
		t.Fatalf("splits %v and %v", tok.Split(), open.Split())
	}
	if a, b := tok.Encode("a lion!"), open.Encode("a lion!"); slices.Equal(a, b) || !slices.Equal(a[:2], b[:2]) {
		t.Fatalf("diffusers %v, open-clip %v: want the same words and a different \"!\"", a, b)
	}
}

func TestParseSplit(t *testing.T) {
	for _, s := range []Split{SplitDiffusers, SplitOpenCLIP} {
		if got, err := ParseSplit(s.String()); err != nil || got != s {
			t.Errorf("ParseSplit(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseSplit("openclip"); err == nil || !strings.Contains(err.Error(), `"openclip": want diffusers or open-clip`) {
		t.Fatalf("a wrong name: %v", err)
	}
}

func ExampleTokenizer_WithSplit() {
	tok, _ := LoadTokenizer(fixtures.Path("tokenizer", "tiny", "bpe_tiny.txt.gz"), "!") // SD 2.x's padding
	fmt.Println(tok.Tokens(tok.Encode("wow!!")))
	open := tok.WithSplit(SplitOpenCLIP)
	fmt.Println(open.Tokens(open.Encode("wow!!")))
	// Output:
	// [w o w</w> ! !]
	// [w o w</w> ! !</w>]
}
