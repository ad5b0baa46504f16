package hub

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Names from the command line or from the Hub's answers become paths in the
// cache (refs/<revision>, blobs/<etag>, snapshots/<commit>/<file>): none may
// lead outside it.
func TestNamesStayInTheCache(t *testing.T) {
	for _, s := range []string{"org/name@../../../tmp/x", "org/name@/etc/passwd", "org/name@a//b", "hf://org/name/../../x.safetensors",
		"hf://org/name/unet/./x.safetensors", "hf://org/name/x.safetensors@..", `org/name@a\b`} {
		if _, _, err := ParseRef(s); err == nil {
			t.Errorf("ParseRef(%q) accepted it", s)
		}
	}
	for _, s := range []string{"org/name@refs/pr/1", "org/name@v1.0", "hf://org/name/sub/x.safetensors@main"} {
		if _, ok, err := ParseRef(s); err != nil || !ok {
			t.Errorf("ParseRef(%q) = %v, %v", s, ok, err)
		}
	}

	// A server whose ETag climbs out of blobs/.
	outside := t.TempDir()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Repo-Commit", strings.Repeat("d", 40))
		w.Header().Set("ETag", `"../../../../../`+filepath.Base(outside)+`/PWNED"`)
		w.Header().Set("Content-Length", "4")
		if r.Method == http.MethodGet {
			w.Write([]byte("evil"))
		}
	}))
	defer srv.Close()
	cache := filepath.Join(filepath.Dir(outside), "cache-"+filepath.Base(outside))
	defer os.RemoveAll(cache)
	c := &Client{Endpoint: srv.URL, CacheDir: filepath.Join(cache, "a", "b"), HTTP: &http.Client{}, EtagTimeout: time.Second, DownloadTimeout: time.Second}
	_, err := c.Resolve(guarded(t), Ref{Repo: "org/name", Revision: "main", File: "x.safetensors"}, false)
	if err == nil || !strings.Contains(err.Error(), "not a content hash") {
		t.Fatalf("a path-like ETag: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "PWNED")); err == nil {
		t.Fatal("a file was written outside the cache")
	}
}
