package rfbench

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"

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

func parsePrompts(path string, data []byte) ([]Prompt, error) {
	// Spreadsheets and Windows editors start UTF-8 files with a byte order mark.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var out []Prompt
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
		for line := 2; ; line++ {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("rfbench: %s: %w", path, err)
			}
			out = append(out, Prompt{ID: rec[col["id"]], Area: rec[col["area"]], Category: rec[col["category"]], Prompt: rec[col["prompt"]]})
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
		}
	}
	seen := map[string]bool{}
	for i, p := range out {
		switch {
		case p.ID == "" || p.Prompt == "":
			return nil, fmt.Errorf("rfbench: %s: prompt %d has no id or no prompt", path, i+1)
		case seen[p.ID]:
			return nil, fmt.Errorf("rfbench: %s: id %q appears twice", path, p.ID)
		case strings.ContainsAny(p.ID, "/\\ "):
			return nil, fmt.Errorf("rfbench: %s: id %q must not contain slashes or spaces (it names files)", path, p.ID)
		}
		seen[p.ID] = true
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("rfbench: %s holds no prompts", path)
	}
	return out, nil
}
