package clip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// An empty merges.txt used to load, and tokenized every word into bytes.
func TestEmptyMergesIsAnError(t *testing.T) {
	dir := t.TempDir()
	vocab, _ := os.ReadFile(fixtures.Path("models", "tiny-sd1", "tokenizer", "vocab.json"))
	os.WriteFile(filepath.Join(dir, "vocab.json"), vocab, 0o644)
	os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"), 0o644)
	if _, err := LoadTokenizer(dir, EndOfText); err == nil || !strings.Contains(err.Error(), "holds no merges") {
		t.Fatalf("empty merges: %v", err)
	}
}
