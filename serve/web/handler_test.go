package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
)

// pagePaths are the URL paths of every file the page is made of.
func pagePaths(t *testing.T) []string {
	t.Helper()
	paths := []string{"/", sharedStyle}
	entries, err := fs.ReadDir(assets, "static")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		paths = append(paths, "/static/"+e.Name())
	}
	return paths
}

func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesEachFileWithItsTypeAndCSP(t *testing.T) {
	h := Handler()
	want := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
	for _, p := range pagePaths(t) {
		res := get(t, h, "GET", p)
		body, _ := io.ReadAll(res.Body)
		typ := "text/html; charset=utf-8"
		if p != "/" {
			typ = want[path.Ext(p)]
		}
		switch {
		case res.StatusCode != http.StatusOK:
			t.Errorf("%s: %s", p, res.Status)
		case res.Header.Get("Content-Type") != typ:
			t.Errorf("%s: Content-Type %q, want %q", p, res.Header.Get("Content-Type"), typ)
		case res.Header.Get("Content-Security-Policy") != CSP:
			t.Errorf("%s: Content-Security-Policy %q", p, res.Header.Get("Content-Security-Policy"))
		case res.Header.Get("X-Content-Type-Options") != "nosniff":
			t.Errorf("%s: no nosniff", p)
		case len(body) == 0:
			t.Errorf("%s: empty", p)
		}
		// A revalidation with the ETag gets 304 and no body.
		if etag := res.Header.Get("ETag"); etag == "" {
			t.Errorf("%s: no ETag", p)
		} else if again := get(t, h, "GET", p, "If-None-Match", etag); again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %s", p, again.Status)
		}
	}
	if res := get(t, h, "HEAD", "/static/app.js"); res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != want[".js"] {
		t.Errorf("HEAD /static/app.js: %s %q", res.Status, res.Header.Get("Content-Type"))
	}
}

func TestCSPIsSelfOnly(t *testing.T) {
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'"} {
		if !strings.Contains(CSP, d) {
			t.Errorf("CSP %q lacks %q", CSP, d)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:", "blob:"} {
		if strings.Contains(CSP, bad) {
			t.Errorf("CSP %q allows %q", CSP, bad)
		}
	}
}

func TestHandlerAnswers404ForAnythingElse(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/index.html", "/static/", "/static/missing.js", "/static/index.html", "/doc.go",
		"/handler.go", "/static/app.js/x", "/favicon.ico", "/v1/unknown"} {
		res := get(t, h, "GET", p)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"not_found_error"`) {
			t.Errorf("GET %s: %s %s", p, res.Status, body)
		}
	}
}
