package jsonconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// heads refuses what is no list of ints with an error that cannot name its
// key, as unet.PerBlock does.
type heads []int

func (h *heads) UnmarshalJSON(b []byte) error {
	var list []int
	if json.Unmarshal(b, &list) != nil {
		return fmt.Errorf("want a list of ints, got %s", b)
	}
	*h = list
	return nil
}

type config struct {
	Width    int            `json:"width"`
	Act      string         `json:"act"`
	Channels []int          `json:"channels"`
	Heads    heads          `json:"heads"`
	Final    *bool          `json:"final"`
	Extra    map[string]int `json:"extra"`
}

func defaults() config {
	yes := true
	return config{Width: 64, Act: "gelu", Channels: []int{32, 64}, Heads: heads{2}, Final: &yes, Extra: map[string]int{"a": 1}}
}

func validate(c config) error {
	if c.Width < 1 {
		return fmt.Errorf("test: config: width %d must be positive", c.Width)
	}
	return nil
}

func write(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Keys in the file replace the defaults, keys it lacks keep them, and keys
// the config does not have are ignored.
func TestLoadOverDefaults(t *testing.T) {
	path := write(t, `{"width": 128, "channels": [8], "final": false, "extra": {"b": 2}, "_class_name": "UNet2DConditionModel", "unknown": [1, 2]}`)
	c, err := Load("test", path, defaults(), validate)
	if err != nil {
		t.Fatal(err)
	}
	if c.Width != 128 || c.Act != "gelu" || !slices.Equal(c.Channels, []int{8}) || !slices.Equal(c.Heads, heads{2}) ||
		*c.Final || c.Extra["a"] != 1 || c.Extra["b"] != 2 {
		t.Fatalf("loaded %+v", c)
	}
}

// The defaults passed in are not written through: the slice's backing array,
// the pointee and the map keep the variant's values.
func TestLoadLeavesBaseAlone(t *testing.T) {
	base := defaults()
	path := write(t, `{"channels": [9, 9], "final": false, "extra": {"a": 5}}`)
	if _, err := Load("test", path, base, validate); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(base.Channels, []int{32, 64}) || !*base.Final || base.Extra["a"] != 1 || len(base.Extra) != 1 {
		t.Fatalf("base changed: %+v, final %v", base, *base.Final)
	}
}

func TestLoadErrorsNameTheFileAndField(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string // substrings after "test: <path>"
	}{
		{"wrong type", `{"width": "wide"}`, []string{"Go struct field config.width of type int"}},
		{"type's own refusal", `{"act": "relu", "heads": "many"}`, []string{": heads: want a list of ints, got \"many\""}},
		{"syntax", "{\n  \"width\": 64,\n  \"act\": gelu\n}", []string{": line 3, column 10: invalid character 'g'"}},
		{"truncated", "{\n  \"width\": 64,", []string{": line 2, column 14: unexpected end of JSON input"}},
		{"not an object", `[1, 2]`, []string{"cannot unmarshal array"}},
		{"invalid value", `{"width": 0}`, []string{"test: config: width 0 must be positive (in "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := write(t, c.text)
			got, err := Load("test", path, defaults(), validate)
			if err == nil {
				t.Fatalf("loaded %+v", got)
			}
			for _, w := range append(c.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "test: ") {
				t.Errorf("error %q does not start with the package", err)
			}
			if got.Width != 0 || got.Channels != nil {
				t.Errorf("a failed load returned %+v, want the zero config", got)
			}
		})
	}
}

// A file that cannot be a config is refused with an error naming it, before
// it is read whole (too large) or at all (a FIFO would block the read).
func TestLoadRefusesWhatIsNoConfigFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte(`{"act": "`+strings.Repeat("x", MaxBytes)+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.json")
	for path, want := range map[string]string{fifo: "named pipe", big: "more than the", dir: "is a folder", missing: "no such file"} {
		done := make(chan error, 1)
		go func() { _, err := Load("test", path, defaults(), validate); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.HasPrefix(err.Error(), "test: ") || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want one naming it and saying %q", path, err, want)
			}
			if path == missing && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v should wrap fs.ErrNotExist", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Load blocked", path)
		}
	}
}

// LoadRebased decodes the file again over the defaults its first reading
// chose: keys it lacks take those, not the first base's.
func TestLoadRebased(t *testing.T) {
	path := write(t, `{"act": "gelu"}`)
	wide := config{Width: 1024, Act: "silu", Channels: []int{9}}
	c, err := LoadRebased("test", path, defaults(), func(c config) config {
		if c.Act == "gelu" {
			return wide
		}
		return c
	}, validate)
	if err != nil || c.Act != "gelu" || c.Width != 1024 || len(c.Channels) != 1 || c.Channels[0] != 9 {
		t.Fatalf("%+v, %v; want the wide defaults under act gelu", c, err)
	}
}
