package infotext

import (
	"slices"
	"testing"
	"unicode/utf8"
)

func seed(s uint64) *uint64 { return &s }

// The keys of every Params this project writes, in A1111's order, and the
// exact text for a plain SD image.
func TestFormatPlainSD(t *testing.T) {
	p := Params{Prompt: "a mouse hunting a lion", NegativePrompt: "blurry", Steps: 50, Scheduler: "ddim", CFGScale: 7.5,
		Seed: seed(7), Width: 512, Height: 512, Model: Checkpoint{Name: "v2-1_512-ema-pruned", Hash: "ad2a33c361"}, Method: "sd"}
	want := "a mouse hunting a lion\nNegative prompt: blurry\n" +
		"Steps: 50, Sampler: DDIM, CFG scale: 7.5, Seed: 7, Size: 512x512, Model hash: ad2a33c361, Model: v2-1_512-ema-pruned, Method: sd"
	if got := p.Format(); got != want {
		t.Fatalf("Format:\n%q\nwant\n%q", got, want)
	}
}

// A1111's sampler labels; a schedule type only where A1111's default would
// space the steps otherwise; no Seed but the latents' file with --init-latents.
func TestFormatSchedulersAndInitLatents(t *testing.T) {
	for _, c := range []struct{ scheduler, want string }{
		{"ddim", "Steps: 20, Sampler: DDIM, CFG scale: 7, Size: 64x64, Method: sd, Init latents: noise.safetensors"},
		{"pndm", "Steps: 20, Sampler: PLMS, CFG scale: 7, Size: 64x64, Method: sd, Init latents: noise.safetensors"},
		{"euler", "Steps: 20, Sampler: Euler, CFG scale: 7, Size: 64x64, Method: sd, Init latents: noise.safetensors"},
		{"DPM++2M", "Steps: 20, Sampler: DPM++ 2M, Schedule type: Uniform, CFG scale: 7, Size: 64x64, Method: sd, Init latents: noise.safetensors"},
	} {
		p := Params{Prompt: "p", Steps: 20, Scheduler: c.scheduler, CFGScale: 7, Width: 64, Height: 64, Method: "sd", InitLatents: "noise.safetensors"}
		if got := p.Format(); got != "p\n"+c.want {
			t.Errorf("%s: %q, want %q", c.scheduler, got, "p\n"+c.want)
		}
	}
}

// Prompts and values with commas, colons, quotes and newlines come back
// exactly, RFNet's keys included.
func TestParamsRoundTrip(t *testing.T) {
	for _, p := range []Params{
		{Prompt: `a cat, "Tom": chased by a mouse` + "\n" + `a second line: "quoted", with commas`,
			NegativePrompt: "blurry, lowres\n\"bad\": hands, {weird} [brackets]\nthird: line",
			Steps:          50, Scheduler: "dpm++2m", CFGScale: 7.5, Seed: seed(18446744073709551615), Width: 768, Height: 512,
			Model:  Checkpoint{Name: "my model, v2: final", Hash: "0123456789"},
			Method: "rfnet", OverallPrompt: "a kitchen floor, with \"a cat\": fleeing\nand a mouse",
			Objects:     []string{`a cat, fleeing in panic`, `a mouse: tiny "but" determined`, "two\nlines", `back\slash`},
			ObjectSeeds: []uint64{20, 21, 12367, 23}},
		{Prompt: "only a prompt", Steps: 1, Scheduler: "euler", CFGScale: 1, Width: 8, Height: 8, Method: "sd",
			InitLatents: `C:\latents, "v2".safetensors`},
		{NegativePrompt: "a negative prompt, without a prompt", Steps: 4, Scheduler: "pndm", CFGScale: 0.5, Seed: seed(0), Width: 64, Height: 64},
		{Prompt: "café 東京 🐭, ünïcödé: ok", Steps: 2, Scheduler: "ddim", CFGScale: 12, Seed: seed(1), Width: 16, Height: 16,
			Model: Checkpoint{Name: "名前", Hash: "abcdef0123"}, OverallPrompt: "tab\there, bell\x07, sep\u2028: é"},
	} {
		text := p.Format()
		got := Parse(text)
		if got.Prompt != p.Prompt || got.NegativePrompt != p.NegativePrompt || !slices.Equal(got.Fields, p.Fields()) {
			t.Errorf("text %q\nread back %q, %q, %q\nwant      %q, %q, %q", text, got.Prompt, got.NegativePrompt, got.Fields,
				p.Prompt, p.NegativePrompt, p.Fields())
		}
	}
}

// The values A1111's quote leaves bare but its parser reads back changed are
// quoted; everything else is written as A1111 writes it.
func TestQuote(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{"50", "50"}, {"DPM++ 2M", "DPM++ 2M"}, {`say "hi"`, `say "hi"`}, {`back\slash`, `back\slash`}, {"tab\tinside", "tab\tinside"},
		{"a, b", `"a, b"`}, {"a: b", `"a: b"`}, {"a\nb", `"a\nb"`}, {"\x01, \x1f", `"\u0001, \u001f"`}, {"é, 東", `"é, 東"`},
		{"", `""`}, {" lead", `" lead"`}, {"trail ", `"trail "`}, {"\u3000wide", "\"\u3000wide\""}, {"\x1cfs", `"\u001cfs"`},
		{`"quoted"`, `"\"quoted\""`}, {`"`, `"\""`},
	} {
		if got := quote(c.value); got != c.want {
			t.Errorf("quote(%q) = %s, want %s", c.value, got, c.want)
		}
		if got, _ := Parse("p\nSteps: 1, Sampler: DDIM, Value: " + quote(c.value)).Fields.Get("Value"); got != c.value {
			t.Errorf("%q read back as %q", c.value, got)
		}
	}
}

// Any value comes back exactly, wherever its pair stands on the line.
func FuzzValueRoundTrip(f *testing.F) {
	for _, s := range []string{"", "x", " a, b: c\n", `"`, `\"`, "\x00", "é\u2028", "[1, 2]", `"a" "b"`, "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if !utf8.ValidString(value) {
			return // a Python string, what the format holds, cannot be invalid UTF-8
		}
		fields := Fields{{"Steps", "1"}, {"First", value}, {"Sampler", "DDIM"}, {"Last", value}}
		got := Parse(format("p", "", fields)).Fields
		if !slices.Equal(got, fields) {
			t.Fatalf("%q read back as %q", value, got)
		}
	})
}
