// Package fakehub is a Hugging Face Hub for tests (net/http/httptest): the repository
// API, the resolve endpoint with the Hub's headers (X-Repo-Commit, ETag,
// X-Linked-Etag, X-Linked-Size, redirects of large files to a CDN path with
// range support), gated repositories and error codes.
//
// Knobs on Server make it misbehave the ways a real Hub or CDN does; set them
// between requests:
//   - CutAfter: the next large-file body hangs up after that many bytes (once).
//   - StallAfter: large-file bodies stop sending at that byte of the file and
//     keep the connection open (a request that starts past it gets the headers
//     only); StallOnce limits that to the next body.
//   - Stall: requests whose "METHOD /path" starts with it get no answer at all.
//   - Status: every request is answered with that HTTP status (429, 503, ...).
//   - Trickle: large-file bodies are sent in chunks of TrickleBytes with that
//     pause between them (a slow but live CDN).
//
// A stalled request waits until the client gives up or the server closes.
package fakehub

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// Repo is one repository at one commit.
type Repo struct {
	Commit string
	Files  map[string][]byte
	// Gated repositories answer 401 without "Authorization: Bearer <Token>".
	Gated bool
	Token string
}

// Server is a running fake Hub.
type Server struct {
	*httptest.Server
	mu    sync.Mutex
	repos map[string]*Repo
	// Log lists "METHOD path range" of every request.
	Log []string
	// CutAfter, when > 0, makes the next large-file body stop after that many bytes (once).
	CutAfter int
	// StallAfter, when > 0, makes large-file bodies stall at that offset of
	// the file; with StallOnce only the next one does.
	StallAfter int
	StallOnce  bool
	// Stall, when set, is a prefix of "METHOD /path" that gets no answer.
	Stall string
	// Status, when set, answers every request.
	Status int
	// Trickle, when > 0, sends large-file bodies TrickleBytes at a time with
	// this pause before each chunk.
	Trickle      time.Duration
	TrickleBytes int

	closed    chan struct{}
	closeOnce sync.Once
}

// New starts a Hub serving repos (keyed "org/name").
func New(repos map[string]*Repo) *Server {
	s := &Server{repos: repos, closed: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close releases the stalled requests, then shuts the server down (it waits
// for every request to end); a closed server refuses connections.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.Server.Close()
}

// hang holds a request open until the client gives up or the server closes.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.closed:
	}
}

// IsLFS: the Hub stores weights with git LFS; they are redirected to the CDN.
func IsLFS(path string) bool {
	return strings.HasSuffix(path, ".safetensors") || strings.HasSuffix(path, ".bin")
}

// GitSHA1 is the ETag of a regular file: the git blob hash.
func GitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// SHA256 is the ETag of an LFS file.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Requests returns the request log so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.Log...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.Log = append(s.Log, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+r.Header.Get("Range")))
	stall, status := s.Stall != "" && strings.HasPrefix(r.Method+" "+r.URL.Path, s.Stall), s.Status
	s.mu.Unlock()
	if stall {
		s.hang(r)
		return
	}
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	if sha, ok := strings.CutPrefix(path, "lfs/"); ok {
		s.serveLFS(w, r, sha)
		return
	}
	api := strings.HasPrefix(path, "api/models/")
	path = strings.TrimPrefix(path, "api/models/")
	parts := strings.SplitN(path, "/", 5)
	if len(parts) < 4 {
		http.NotFound(w, r)
		return
	}
	repoName, kind, rev := parts[0]+"/"+parts[1], parts[2], parts[3]
	repo, ok := s.repos[repoName]
	if !ok {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, "Repository not found", http.StatusNotFound)
		return
	}
	if repo.Gated && r.Header.Get("Authorization") != "Bearer "+repo.Token {
		w.Header().Set("X-Error-Code", "GatedRepo")
		http.Error(w, "Access to this repository is restricted", http.StatusUnauthorized)
		return
	}
	if rev != "main" && rev != repo.Commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.Error(w, "Invalid rev id", http.StatusNotFound)
		return
	}
	switch {
	case api && kind == "revision":
		var sib []map[string]string
		names := make([]string, 0, len(repo.Files))
		for n := range repo.Files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			sib = append(sib, map[string]string{"rfilename": n})
		}
		json.NewEncoder(w).Encode(map[string]any{"id": repoName, "sha": repo.Commit, "siblings": sib})
	case !api && kind == "resolve" && len(parts) == 5:
		file := parts[4]
		data, ok := repo.Files[file]
		if !ok {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			http.Error(w, "Entry not found", http.StatusNotFound)
			return
		}
		w.Header().Set("X-Repo-Commit", repo.Commit)
		if IsLFS(file) {
			sha := SHA256(data)
			w.Header().Set("X-Linked-Etag", `"`+sha+`"`)
			w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
			w.Header().Set("ETag", `"`+sha+`"`)
			http.Redirect(w, r, s.URL+"/lfs/"+sha, http.StatusFound)
			return
		}
		w.Header().Set("ETag", `"`+GitSHA1(data)+`"`)
		http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(data))
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveLFS(w http.ResponseWriter, r *http.Request, sha string) {
	for _, repo := range s.repos {
		for _, data := range repo.Files {
			if SHA256(data) != sha {
				continue
			}
			s.mu.Lock()
			cut, stallAt, trickle, chunk := s.CutAfter, s.StallAfter, s.Trickle, max(s.TrickleBytes, 1)
			s.CutAfter = 0
			if s.StallOnce {
				s.StallAfter = 0
			}
			s.mu.Unlock()
			if stallAt > 0 && r.Method == http.MethodGet {
				s.stallBody(w, r, data, stallAt)
				return
			}
			if cut > 0 && r.Method == http.MethodGet {
				// A connection that dies mid-file: send the first bytes, then hang up.
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
				w.WriteHeader(http.StatusOK)
				w.Write(data[:cut])
				w.(http.Flusher).Flush()
				if hj, ok := w.(http.Hijacker); ok {
					conn, _, _ := hj.Hijack()
					conn.Close()
				}
				return
			}
			if trickle > 0 && r.Method == http.MethodGet && r.Header.Get("Range") == "" {
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
				w.WriteHeader(http.StatusOK)
				for at := 0; at < len(data); at += chunk {
					time.Sleep(trickle)
					w.Write(data[at:min(at+chunk, len(data))])
					w.(http.Flusher).Flush()
				}
				return
			}
			http.ServeContent(w, r, sha, time.Time{}, bytes.NewReader(data))
			return
		}
	}
	http.NotFound(w, r)
}

// stallBody answers a GET of data (from its Range, if any) with the bytes
// before offset at, then sends nothing more while keeping the connection open.
func (s *Server) stallBody(w http.ResponseWriter, r *http.Request, data []byte, at int) {
	start := 0
	fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &start)
	w.Header().Set("Content-Length", fmt.Sprint(len(data)-start))
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.WriteHeader(http.StatusPartialContent)
	}
	if start < at {
		w.Write(data[start:at])
	}
	w.(http.Flusher).Flush()
	s.hang(r)
}
