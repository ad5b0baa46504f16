package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
)

// Errors callers branch on.
var (
	ErrOffline  = errors.New("offline and not in the cache")
	ErrGated    = errors.New("the repository needs an access token")
	ErrNotFound = errors.New("not found on the Hub")
)

// Client talks to the Hub and keeps its cache.
type Client struct {
	Endpoint string // HF_ENDPOINT, https://huggingface.co by default
	Token    string // HF_TOKEN
	CacheDir string // the hub cache: HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub
	Offline  bool   // HF_HUB_OFFLINE: never touch the network
	// Verify re-hashes blobs found in the cache (size is always checked).
	Verify  bool
	HTTP    *http.Client
	Retries int
	Backoff time.Duration
	// Progress, when set, is called for each file downloaded and returns the
	// writer that counts its bytes (a progress bar), or nil.
	Progress func(name string, size int64) io.Writer
	Log      io.Writer
}

// FromEnv returns a client configured as the Python tools are.
func FromEnv() *Client {
	c := &Client{Endpoint: "https://huggingface.co", Retries: 5, Backoff: time.Second, HTTP: &http.Client{}}
	if e := os.Getenv("HF_ENDPOINT"); e != "" {
		c.Endpoint = strings.TrimRight(e, "/")
	}
	c.Token = os.Getenv("HF_TOKEN")
	if c.Token == "" {
		c.Token = os.Getenv("HUGGING_FACE_HUB_TOKEN")
	}
	switch {
	case os.Getenv("HF_HUB_CACHE") != "":
		c.CacheDir = os.Getenv("HF_HUB_CACHE")
	case os.Getenv("HF_HOME") != "":
		c.CacheDir = filepath.Join(os.Getenv("HF_HOME"), "hub")
	default:
		home, _ := os.UserHomeDir()
		c.CacheDir = filepath.Join(home, ".cache", "huggingface", "hub")
	}
	switch strings.ToLower(os.Getenv("HF_HUB_OFFLINE")) {
	case "1", "true", "yes", "on":
		c.Offline = true
	}
	return c
}

func (c *Client) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "rfnet-native: hub: "+format+"\n", args...)
	}
}

// repoDir is the cache folder of a model repository: models--org--name.
func (c *Client) repoDir(repo string) string {
	return filepath.Join(c.CacheDir, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

var commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// cachedCommit is the commit the cache records for a revision.
func (c *Client) cachedCommit(ref Ref) (string, bool) {
	if commitPattern.MatchString(ref.Revision) {
		return ref.Revision, true
	}
	raw, err := os.ReadFile(filepath.Join(c.repoDir(ref.Repo), "refs", ref.Revision))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(raw)), true
}

// Files is the resolution of a reference: the snapshot folder and the files in it.
type Files struct {
	Dir   string   // snapshots/<commit>
	Paths []string // relative to Dir
}

// Resolve makes the files of ref available in the cache and returns their
// snapshot: for a single file, that file; for a repository, what a Stable
// Diffusion pipeline reads (see Select), with fp16 weight files when preferFP16
// and the repository has them.
func (c *Client) Resolve(ctx context.Context, ref Ref, preferFP16 bool) (Files, error) {
	if c.Offline {
		return c.resolveOffline(ref, preferFP16)
	}
	var paths []string
	commit := ""
	if ref.File != "" {
		paths = []string{ref.File}
	} else {
		info, err := c.repoInfo(ctx, ref)
		if err != nil {
			return Files{}, err
		}
		commit = info.SHA
		var names []string
		for _, s := range info.Siblings {
			names = append(names, s.Name)
		}
		if paths, err = Select(names, preferFP16); err != nil {
			return Files{}, fmt.Errorf("hub: %s: %w", ref, err)
		}
	}
	for _, p := range paths {
		cm, err := c.fetch(ctx, ref, p)
		if err != nil {
			return Files{}, err
		}
		if commit == "" {
			commit = cm
		}
	}
	if !commitPattern.MatchString(ref.Revision) {
		refFile := filepath.Join(c.repoDir(ref.Repo), "refs", ref.Revision)
		if err := os.MkdirAll(filepath.Dir(refFile), 0o755); err != nil {
			return Files{}, fmt.Errorf("hub: %w", err)
		}
		if err := atomicfile.WriteBytes(refFile, []byte(commit)); err != nil {
			return Files{}, fmt.Errorf("hub: %w", err)
		}
	}
	return Files{Dir: filepath.Join(c.repoDir(ref.Repo), "snapshots", commit), Paths: paths}, nil
}

// resolveOffline uses the cache alone.
func (c *Client) resolveOffline(ref Ref, preferFP16 bool) (Files, error) {
	commit, ok := c.cachedCommit(ref)
	if !ok {
		return Files{}, fmt.Errorf("hub: %s: %w (no %s in %s); download it first with `rfnet-native download %s` on a machine with internet, or unset HF_HUB_OFFLINE",
			ref, ErrOffline, filepath.Join("refs", ref.Revision), c.repoDir(ref.Repo), ref)
	}
	dir := filepath.Join(c.repoDir(ref.Repo), "snapshots", commit)
	var paths []string
	if ref.File != "" {
		paths = []string{ref.File}
	} else {
		var names []string
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				names = append(names, filepath.ToSlash(rel))
			}
			return nil
		})
		var err error
		if paths, err = Select(names, preferFP16); err != nil {
			return Files{}, fmt.Errorf("hub: %s: %w: %v (offline: only the cached snapshot %s was searched; run `rfnet-native download %s` with internet)", ref, ErrOffline, err, dir, ref)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.IsDir() {
			return Files{}, fmt.Errorf("hub: %s: %w: %s is missing from %s; run `rfnet-native download %s` with internet, or unset HF_HUB_OFFLINE", ref, ErrOffline, p, dir, ref)
		}
		if c.Verify {
			target, _ := filepath.EvalSymlinks(filepath.Join(dir, p))
			if err := verifyBlob(target, filepath.Base(target), fi.Size()); err != nil {
				return Files{}, fmt.Errorf("hub: %s: %s: %w (offline: cannot fetch it again)", ref, p, err)
			}
		}
	}
	return Files{Dir: dir, Paths: paths}, nil
}

// Select picks the files a Stable Diffusion pipeline reads from a diffusers
// repository listing: the configs, the tokenizer, and for each model one
// .safetensors weight file (the fp16 variant when preferFP16 and present).
// Pickles (.bin, .ckpt) are never chosen; a model with only those is an error.
func Select(names []string, preferFP16 bool) ([]string, error) {
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	want := []string{"model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
		"tokenizer/vocab.json", "tokenizer/merges.txt", "unet/config.json", "vae/config.json"}
	for _, opt := range []string{"tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json"} {
		if have[opt] {
			want = append(want, opt)
		}
	}
	for _, n := range want {
		if !have[n] {
			return nil, fmt.Errorf("%w: the repository has no %s (is it a Stable Diffusion diffusers repository?)", ErrNotFound, n)
		}
	}
	for _, m := range []struct{ dir, base string }{{"text_encoder", "model"}, {"unet", "diffusion_pytorch_model"}, {"vae", "diffusion_pytorch_model"}} {
		full, half := m.dir+"/"+m.base+".safetensors", m.dir+"/"+m.base+".fp16.safetensors"
		switch {
		case preferFP16 && have[half]:
			want = append(want, half)
		case have[full]:
			want = append(want, full)
		case have[half]:
			want = append(want, half)
		default:
			return nil, fmt.Errorf("%w: %s has no .safetensors weights (rfnet-native never loads .bin or .ckpt pickles)", ErrNotFound, m.dir)
		}
	}
	return want, nil
}

// repoInfo is GET /api/models/{repo}/revision/{revision}.
type repoInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		Name string `json:"rfilename"`
	} `json:"siblings"`
}

func (c *Client) repoInfo(ctx context.Context, ref Ref) (*repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s", c.Endpoint, ref.Repo, url.PathEscape(ref.Revision))
	var info repoInfo
	err := c.retry(ctx, ref.String(), func() error {
		resp, err := c.do(ctx, http.MethodGet, u, nil, true)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := c.statusError(resp, ref, ""); err != nil {
			return err
		}
		return json.NewDecoder(resp.Body).Decode(&info)
	})
	if err != nil {
		return nil, err
	}
	if !commitPattern.MatchString(info.SHA) {
		return nil, fmt.Errorf("hub: %s: the Hub's answer has no commit (sha %q)", ref, info.SHA)
	}
	return &info, nil
}

// meta is what the resolve endpoint's headers say about a file.
type meta struct {
	commit, etag, location string
	size                   int64
}

// head asks the resolve endpoint about a file without following the CDN
// redirect (its headers carry the commit, the linked ETag and size).
func (c *Client) head(ctx context.Context, ref Ref, path string) (meta, error) {
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", c.Endpoint, ref.Repo, url.PathEscape(ref.Revision), path)
	var m meta
	err := c.retry(ctx, ref.String()+" "+path, func() error {
		resp, err := c.do(ctx, http.MethodHead, u, nil, false)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc, err := resp.Location()
			if err != nil {
				return fmt.Errorf("hub: %s: redirect without a location", u)
			}
			m.location = loc.String()
		} else if err := c.statusError(resp, ref, path); err != nil {
			return err
		}
		m.commit = resp.Header.Get("X-Repo-Commit")
		m.etag = resp.Header.Get("X-Linked-Etag")
		if m.etag == "" {
			m.etag = resp.Header.Get("ETag")
		}
		m.etag = strings.Trim(strings.TrimPrefix(m.etag, "W/"), `"`)
		size := resp.Header.Get("X-Linked-Size")
		if size == "" {
			size = resp.Header.Get("Content-Length")
		}
		m.size, _ = strconv.ParseInt(size, 10, 64)
		if m.location == "" {
			m.location = u
		}
		return nil
	})
	if err == nil && (!commitPattern.MatchString(m.commit) || m.etag == "") {
		err = fmt.Errorf("hub: %s: %s: the Hub did not send X-Repo-Commit and ETag headers (HF_ENDPOINT %s is not a Hub?)", ref, path, c.Endpoint)
	}
	return m, err
}

// fetch makes one file of ref available in the cache and links it into its
// snapshot; it returns the commit.
func (c *Client) fetch(ctx context.Context, ref Ref, path string) (string, error) {
	m, err := c.head(ctx, ref, path)
	if err != nil {
		return "", err
	}
	repo := c.repoDir(ref.Repo)
	blob := filepath.Join(repo, "blobs", m.etag)
	if fi, err := os.Stat(blob); err == nil {
		err := error(nil)
		switch {
		case fi.Size() != m.size:
			err = fmt.Errorf("size %d, the Hub says %d", fi.Size(), m.size)
		case c.Verify:
			err = verifyBlob(blob, m.etag, m.size)
		}
		if err != nil {
			c.logf("cached %s of %s is damaged (%v); fetching it again", path, ref, err)
			os.Remove(blob)
		}
	}
	if _, err := os.Stat(blob); err != nil {
		if err := c.download(ctx, ref, path, m, blob); err != nil {
			return "", err
		}
	}
	link := filepath.Join(repo, "snapshots", m.commit, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	rel, _ := filepath.Rel(filepath.Dir(link), blob)
	if cur, err := os.Readlink(link); err != nil || cur != rel {
		os.Remove(link)
		if err := os.Symlink(rel, link); err != nil {
			return "", fmt.Errorf("hub: link %s: %w", link, err)
		}
	}
	return m.commit, nil
}

// download fetches a file into blob: resumed from blob.incomplete with an HTTP
// range, verified, then renamed into place.
func (c *Client) download(ctx context.Context, ref Ref, path string, m meta, blob string) error {
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	part := blob + ".incomplete"
	var counter io.Writer
	if c.Progress != nil {
		counter = c.Progress(path, m.size)
	}
	err := c.retry(ctx, ref.String()+" "+path, func() error {
		f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return permanent(fmt.Errorf("hub: %w", err))
		}
		defer f.Close()
		have, _ := f.Seek(0, io.SeekEnd)
		if have > m.size {
			f.Truncate(0)
			have, _ = f.Seek(0, io.SeekStart)
		}
		if have == m.size {
			return nil
		}
		hdr := http.Header{}
		if have > 0 {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-", have))
		}
		resp, err := c.do(ctx, http.MethodGet, m.location, hdr, true)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent:
		case resp.StatusCode == http.StatusOK:
			// The server ignored the range: start over.
			f.Truncate(0)
			f.Seek(0, io.SeekStart)
			have = 0
		default:
			if err := c.statusError(resp, ref, path); err != nil {
				return err
			}
		}
		if counter != nil {
			if s, ok := counter.(interface{ Set64(int64) error }); ok {
				s.Set64(have)
			}
		}
		var w io.Writer = f
		if counter != nil {
			w = io.MultiWriter(f, counter)
		}
		if _, err := io.Copy(w, resp.Body); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return permanent(fmt.Errorf("hub: disk full while writing %s (%s of %s needs %d bytes): free space in %s or point HF_HOME elsewhere",
					part, path, ref, m.size, c.CacheDir))
			}
			return err
		}
		if err := f.Sync(); err != nil {
			return permanent(fmt.Errorf("hub: %s: %w", part, err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := verifyBlob(part, m.etag, m.size); err != nil {
		os.Remove(part)
		return fmt.Errorf("hub: %s %s: the download is damaged (%v); run the command again", ref, path, err)
	}
	if err := os.Rename(part, blob); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

// verifyBlob checks a file's size and hash against the Hub's ETag: a SHA-256
// for large (LFS) files, the git blob SHA-1 for the others.
func verifyBlob(path, etag string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("size %d, want %d", fi.Size(), size)
	}
	var h hash.Hash
	switch len(etag) {
	case 64:
		h = sha256.New()
	case 40:
		h = sha1.New()
		fmt.Fprintf(h, "blob %d\x00", size)
	default:
		return nil // an ETag that is no content hash: size only
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != etag {
		return fmt.Errorf("hash %s, want %s", got, etag)
	}
	return nil
}

// do sends a request with the token and, when follow is false, without following redirects.
func (c *Client) do(ctx context.Context, method, u string, hdr http.Header, follow bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, permanent(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.Token != "" && sameHost(u, c.Endpoint) {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "rfnet-native")
	client := *c.HTTP
	if !follow {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return client.Do(req)
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Host == ub.Host
}

// statusError turns an HTTP error status into an error that says what to do.
func (c *Client) statusError(resp *http.Response, ref Ref, path string) error {
	if resp.StatusCode < 400 {
		return nil
	}
	what := ref.String()
	if path != "" {
		what += " " + path
	}
	code := resp.Header.Get("X-Error-Code")
	switch {
	case resp.StatusCode == 401 || resp.StatusCode == 403 || code == "GatedRepo":
		hint := "set HF_TOKEN to a token of an account with access"
		if c.Token != "" {
			hint = "the token in HF_TOKEN has no access"
		}
		return permanent(fmt.Errorf("hub: %s: %w (HTTP %d): %s, and accept the model's license at %s/%s", what, ErrGated, resp.StatusCode, hint, c.Endpoint, ref.Repo))
	case resp.StatusCode == 404:
		switch code {
		case "RevisionNotFound":
			return permanent(fmt.Errorf("hub: %s: %w: revision %q does not exist", what, ErrNotFound, ref.Revision))
		case "EntryNotFound":
			return permanent(fmt.Errorf("hub: %s: %w: no file %s at revision %s", what, ErrNotFound, path, ref.Revision))
		}
		return permanent(fmt.Errorf("hub: %s: %w: repository %s does not exist (or is private: set HF_TOKEN)", what, ErrNotFound, ref.Repo))
	case resp.StatusCode == 429 || resp.StatusCode >= 500:
		return fmt.Errorf("hub: %s: HTTP %d", what, resp.StatusCode)
	}
	return permanent(fmt.Errorf("hub: %s: HTTP %d", what, resp.StatusCode))
}

type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

func permanent(err error) error { return permanentError{err} }

// retry runs f until it succeeds, fails permanently, or the retries run out,
// waiting Backoff, then twice as long, ...
func (c *Client) retry(ctx context.Context, what string, f func() error) error {
	wait := c.Backoff
	for try := 0; ; try++ {
		err := f()
		var p permanentError
		if err == nil || errors.As(err, &p) || ctx.Err() != nil {
			if errors.As(err, &p) {
				return p.error
			}
			return err
		}
		if try >= c.Retries {
			return fmt.Errorf("hub: %s: giving up after %d tries: %w", what, try+1, err)
		}
		c.logf("%s: %v; retrying in %s", what, err, wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}
