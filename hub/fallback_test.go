package hub

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/internal/fakehub"
)

// countingTransport counts the requests a client sends, whether or not a
// server takes them.
type countingTransport struct{ n atomic.Int32 }

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func countRequests(c *Client) *atomic.Int32 {
	t := &countingTransport{}
	c.HTTP = &http.Client{Transport: t}
	return &t.n
}

// With the model in the cache, a Hub that cannot be reached costs one
// request, and the cached snapshot is used with a warning.
func TestCachedBeatsDown(t *testing.T) {
	for _, c := range []struct {
		name string
		down func(*fakehub.Server)
	}{
		{"connection refused", func(s *fakehub.Server) { s.Close() }},
		{"HTTP 503", func(s *fakehub.Server) { s.Status = http.StatusServiceUnavailable }},
		{"HTTP 429", func(s *fakehub.Server) { s.Status = http.StatusTooManyRequests }},
		{"stalled", func(s *fakehub.Server) { s.Stall = "GET /api/" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			repo, s, cl := tinyHub(t)
			ref := Ref{Repo: "org/tiny-sd1", Revision: "main"}
			want, err := cl.Resolve(context.Background(), ref, false)
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			cl.Log, cl.EtagTimeout = &log, 100*time.Millisecond
			sent := countRequests(cl)
			c.down(s)
			got, err := cl.Resolve(guarded(t), ref, false)
			if err != nil || got.Dir != want.Dir || len(got.Paths) != len(want.Paths) {
				t.Fatalf("%v, %v", got, err)
			}
			if n := sent.Load(); n != 1 {
				t.Fatalf("%d requests, want one metadata attempt", n)
			}
			if !bytes.Contains(log.Bytes(), []byte("using the cached snapshot "+repo.Commit+" of org/tiny-sd1@main")) {
				t.Fatalf("no warning: %q", log.String())
			}

			// With Verify (the download command) the cached blobs are still checked.
			blob, _ := filepath.EvalSymlinks(filepath.Join(got.Dir, "vae", "diffusion_pytorch_model.safetensors"))
			good, _ := os.ReadFile(blob)
			os.WriteFile(blob, append([]byte{good[0] ^ 0xff}, good[1:]...), 0o644)
			cl.Verify = true
			_, err = cl.Resolve(guarded(t), ref, false)
			mustContain(t, err, "vae/diffusion_pytorch_model.safetensors", "hash")
			os.WriteFile(blob, good, 0o644)

			// A file missing from the snapshot: the error says how to go on.
			os.Remove(filepath.Join(got.Dir, "vae", "config.json"))
			_, err = cl.Resolve(guarded(t), ref, false)
			if !errors.Is(err, ErrOffline) {
				t.Fatalf("not ErrOffline: %v", err)
			}
			mustContain(t, err, "vae/config.json", "HF_HUB_OFFLINE=1", "rfnet-native download org/tiny-sd1")
		})
	}
}

// With nothing cached, a Hub that is down gets every retry, as before.
func TestDownWithNothingCached(t *testing.T) {
	for _, c := range []struct {
		name string
		down func(*fakehub.Server)
	}{
		{"connection refused", func(s *fakehub.Server) { s.Close() }},
		{"HTTP 503", func(s *fakehub.Server) { s.Status = http.StatusServiceUnavailable }},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, s, cl := tinyHub(t)
			sent := countRequests(cl)
			c.down(s)
			_, err := cl.Resolve(guarded(t), Ref{Repo: "org/tiny-sd1", Revision: "main"}, false)
			mustContain(t, err, "hub: org/tiny-sd1: giving up after 4 tries")
			if n := sent.Load(); n != 4 {
				t.Fatalf("%d requests, want 4", n)
			}
		})
	}
}

// A Hub that answers that the repository is now gated, or gone, is not
// overruled by the cache.
func TestPermanentAnswerBeatsCache(t *testing.T) {
	repo, _, c := tinyHub(t)
	ref := Ref{Repo: "org/tiny-sd1", Revision: "main"}
	if _, err := c.Resolve(context.Background(), ref, false); err != nil {
		t.Fatal(err)
	}
	repo.Gated, repo.Token = true, "hf_secret"
	if _, err := c.Resolve(context.Background(), ref, false); !errors.Is(err, ErrGated) {
		t.Fatalf("gated: %v", err)
	}
}
