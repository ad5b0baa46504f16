package rfbench

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rfnet/rfnet-native/internal/regular"
)

// The two areas of the benchmark.
const (
	RealisticAnalytical = "Realistic & Analytical"
	CreativeImaginative = "Creativity & Imagination"
)

// Prompt is one benchmark prompt.
type Prompt struct {
	ID       string `json:"id"`
	Area     string `json:"area"`
	Category string `json:"category"`
	Prompt   string `json:"prompt"`
}

//go:embed prompts.jsonl
var defaultPrompts []byte

// DefaultPrompts is the project's prompt set: 234 prompts, 26 in each of the
// nine subcategories.
func DefaultPrompts() []Prompt {
	p, err := parsePrompts("prompts.jsonl", defaultPrompts)
	if err != nil {
		panic(err) // the embedded file is checked by the tests
	}
	return p
}

// LoadPrompts reads a JSONL file (one object per line) or a CSV file with the
// header id,area,category,prompt (in any order). A named pipe or a device is
// refused rather than read, which would block.
func LoadPrompts(path string) ([]Prompt, error) {
	data, err := regular.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rfbench: %w", err)
	}
	return parsePrompts(path, data)
}

// maxIDBytes bounds a prompt id. It names files such as
// images/<method>/.<id>-s<seed>.json.tmp-<n> and <id>-s<seed>.claim.stale-<12
// hex digits>, about 40 bytes more than the id, and file systems take names of
// at most 255 bytes.
const maxIDBytes = 200

// checkID says why a prompt id cannot name the item's files, or returns nil.
// Every file of an item is named after it, so a bad one would fail every
// item of the prompt, and running again would not help.
func checkID(id string) error {
	switch {
	case len(id) > maxIDBytes:
		return fmt.Errorf("is %d bytes long, want at most %d", len(id), maxIDBytes)
	case strings.ContainsAny(id, "/\\ "):
		return fmt.Errorf("must not contain slashes or spaces")
	case strings.HasPrefix(id, "."):
		// ".", "..", and names merge takes for temporary files.
		return fmt.Errorf("must not start with a dot")
	case !utf8.ValidString(id):
		return fmt.Errorf("is not valid UTF-8")
	}
	for _, c := range id {
		if unicode.IsControl(c) {
			return fmt.Errorf("must not contain control characters such as %q", c)
		}
	}
	return nil
}

func parsePrompts(path string, data []byte) ([]Prompt, error) {
	// Spreadsheets and Windows editors start UTF-8 files with a byte order mark.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var out []Prompt
	var lines []int // of each prompt in out, for messages
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		r := csv.NewReader(bytes.NewReader(data))
		header, err := r.Read()
		if err != nil {
			return nil, fmt.Errorf("rfbench: %s: %w", path, err)
		}
		col := map[string]int{}
		for i, h := range header {
			col[strings.ToLower(strings.TrimSpace(h))] = i
		}
		for _, k := range []string{"id", "area", "category", "prompt"} {
			if _, ok := col[k]; !ok {
				return nil, fmt.Errorf("rfbench: %s: the header has no %q column (want id, area, category, prompt)", path, k)
			}
		}
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("rfbench: %s: %w", path, err)
			}
			line, _ := r.FieldPos(col["id"])
			out = append(out, Prompt{ID: rec[col["id"]], Area: rec[col["area"]], Category: rec[col["category"]], Prompt: rec[col["prompt"]]})
			lines = append(lines, line)
		}
	} else {
		for i, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var p Prompt
			if err := json.Unmarshal(line, &p); err != nil {
				return nil, fmt.Errorf("rfbench: %s:%d: %w", path, i+1, err)
			}
			out = append(out, p)
			lines = append(lines, i+1)
		}
	}
	seen := map[string]int{}
	for i, p := range out {
		at := fmt.Sprintf("%s:%d", path, lines[i])
		if p.ID == "" || p.Prompt == "" {
			return nil, fmt.Errorf("rfbench: %s: prompt %d has no id or no prompt", at, i+1)
		}
		if first, ok := seen[p.ID]; ok {
			return nil, fmt.Errorf("rfbench: %s: id %q appears twice (first on line %d)", at, p.ID, first)
		}
		if err := checkID(p.ID); err != nil {
			return nil, fmt.Errorf("rfbench: %s: id %q %v (it names the item's files)", at, p.ID, err)
		}
		seen[p.ID] = lines[i]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("rfbench: %s holds no prompts", path)
	}
	return out, nil
}
