package clip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A config that fails validation is refused with the file's name: the error
// used to name only the field.
func TestLoadConfigErrorNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"hidden_act": "relu"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path, ViTL14())
	if err == nil || !strings.Contains(err.Error(), `clip: config: hidden_act "relu"`) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want one naming hidden_act and %s", err, path)
	}
}
