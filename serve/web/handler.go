package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"time"

	"github.com/rfnet/rfnet-native/internal/htmlstyle"
)

//go:embed index.html static
var assets embed.FS

// CSP is the Content-Security-Policy of every answer: scripts, styles and
// requests from the page's own origin only (so no inline script can run, and
// nothing can be loaded from elsewhere), images also from data: URLs (the
// latent previews arrive as base64 PNGs), no plugins, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes are the types of the files the page is made of. They are fixed
// here rather than taken from mime.TypeByExtension, which reads the system's
// tables and so can differ between machines (older Debian maps .js to
// application/javascript).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// sharedStyle is the project's shared stylesheet, served as a file of its own
// so the page looks like the generated index.html pages.
const sharedStyle = "/static/htmlstyle.css"

// Handler serves the page at "/" and its files under "/static/"; any other
// path is a 404 in the API's error shape. It answers GET and HEAD.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { serveAsset(w, r, "index.html") })
	mux.HandleFunc("GET "+sharedStyle, func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, sharedStyle, []byte(htmlstyle.CSS))
	})
	mux.HandleFunc("GET /static/{name}", func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, "static/"+r.PathValue("name"))
	})
	mux.HandleFunc("/", notFound)
	return mux
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	data, err := fs.ReadFile(assets, name)
	if err != nil || contentTypes[path.Ext(name)] == "" {
		notFound(w, r)
		return
	}
	serve(w, r, name, data)
}

// serve writes one file with its type and the page's headers. The files are
// part of the binary, so a client revalidates (no-cache, with the content's
// hash as ETag) and gets them anew after an upgrade rather than mixing old
// modules with new ones.
func serve(w http.ResponseWriter, r *http.Request, name string, data []byte) {
	h := w.Header()
	h.Set("Content-Type", contentTypes[path.Ext(name)])
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	sum := sha256.Sum256(data)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

// notFound answers in the API's error shape (docs/serve-api.md).
func notFound(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Security-Policy", CSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
		"message": "no such path: " + r.URL.Path, "type": "not_found_error",
	}})
}
