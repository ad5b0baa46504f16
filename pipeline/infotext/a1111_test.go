package infotext

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// a1111Cases is testdata/infotext/a1111.json: texts and what A1111's own
// parse_generation_parameters made of them (testdata/gen/make_infotext.py,
// run on modules/infotext_utils.py of AUTOMATIC1111/stable-diffusion-webui).
type a1111Cases struct {
	Defaults map[string]any `json:"defaults"`
	Cases    []struct {
		Name           string         `json:"name"`
		Kind           string         `json:"kind"` // "written": fields A1111 quoted; "text": a text as it came
		Prompt         string         `json:"prompt"`
		NegativePrompt string         `json:"negative_prompt"`
		Fields         [][2]string    `json:"fields"`
		Text           string         `json:"text"`
		A1111          map[string]any `json:"a1111"`
	} `json:"cases"`
}

func readA1111Cases(t *testing.T) a1111Cases {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path("infotext", "a1111.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c a1111Cases
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// A1111's re_imagesize, with Python's \d (any decimal digit) and $ (which
// also matches before a final newline).
var imageSize = regexp.MustCompile(`^(\p{Nd}+)x(\p{Nd}+)\n?$`)

// a1111Dict is the dict A1111's parser makes of what Parse read, before it
// fills in its defaults: Prompt, Negative prompt, and each pair, a WxH
// value split into Key-1 and Key-2.
func a1111Dict(p Parsed) map[string]any {
	d := map[string]any{"Prompt": p.Prompt, "Negative prompt": p.NegativePrompt}
	for _, f := range p.Fields {
		if m := imageSize.FindStringSubmatch(f.Value); m != nil {
			d[f.Key+"-1"], d[f.Key+"-2"] = m[1], m[2]
		} else {
			d[f.Key] = f.Value
		}
	}
	return d
}

// Parse reads every text as A1111 does: the same prompt, negative prompt and
// pairs, and A1111 adds nothing but its defaults for keys the text lacks.
func TestParseAgreesWithA1111(t *testing.T) {
	c := readA1111Cases(t)
	for _, tc := range c.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			got := a1111Dict(Parse(tc.Text))
			for k, v := range got {
				if !reflect.DeepEqual(tc.A1111[k], v) {
					t.Errorf("%q: %q, A1111 read %q", k, v, tc.A1111[k])
				}
			}
			for k, v := range tc.A1111 {
				if _, ok := got[k]; !ok && !reflect.DeepEqual(c.Defaults[k], v) {
					t.Errorf("%q: A1111 read %q, Parse nothing", k, v)
				}
			}
		})
	}
}

// For the pairs A1111 itself wrote, format writes the same text, byte for
// byte, and Parse gives back every key and value.
func TestFormatWritesWhatA1111Writes(t *testing.T) {
	for _, tc := range readA1111Cases(t).Cases {
		if tc.Kind != "written" {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			var fields Fields
			for _, f := range tc.Fields {
				fields = append(fields, Field{f[0], f[1]})
			}
			text := format(tc.Prompt, tc.NegativePrompt, fields)
			if text != tc.Text {
				t.Fatalf("format:\n%q\nA1111 wrote:\n%q", text, tc.Text)
			}
			p := Parse(text)
			if p.Prompt != tc.Prompt || p.NegativePrompt != tc.NegativePrompt || !slices.Equal(p.Fields, fields) {
				t.Fatalf("Parse = %q, %q, %q; want %q, %q, %q", p.Prompt, p.NegativePrompt, p.Fields, tc.Prompt, tc.NegativePrompt, fields)
			}
		})
	}
}
