package unet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A num_attention_heads of the base config does not override the head counts
// of a file that sets only attention_head_dim.
func TestLoadConfigHeadsComeFromTheFile(t *testing.T) {
	base := SD14()
	base.NumAttentionHeads = HeadList{5}
	c, err := LoadConfig(writeConfig(t, `{"attention_head_dim": 10}`), base)
	if err != nil {
		t.Fatal(err)
	}
	if h := c.HeadsOf(0); h != 10 {
		t.Fatalf("block 0 has %d heads, want the file's 10", h)
	}
}

// A head count that is neither an int nor a list is refused with the file and
// the key: HeadList's own error cannot name the key.
func TestLoadConfigNamesTheBadKey(t *testing.T) {
	path := writeConfig(t, `{"attention_head_dim": "eight"}`)
	_, err := LoadConfig(path, SD14())
	if err == nil || !strings.Contains(err.Error(), "unet: "+path+": attention_head_dim: want an int or a list of ints") {
		t.Fatalf("error %v, want one naming %s and attention_head_dim", err, path)
	}
}
