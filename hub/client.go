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
	Verify bool
	// EtagTimeout is how long a metadata request (the repository listing, a
	// file's HEAD) may go without receiving anything, connecting included;
	// DownloadTimeout is the same for a file's download, which it never
	// bounds as a whole. 0 is no limit.
	EtagTimeout, DownloadTimeout time.Duration
	HTTP                         *http.Client
	Retries                      int
	Backoff                      time.Duration
	// Progress, when set, is called for each file downloaded and returns the
	// writer that counts its bytes (a progress bar), or nil.
	Progress func(name string, size int64) io.Writer
	Log      io.Writer
}

// FromEnv returns a client configured as the Python tools are. A malformed
// HF_HUB_ETAG_TIMEOUT or HF_HUB_DOWNLOAD_TIMEOUT is an error naming it.
func FromEnv() (*Client, error) {
	c := &Client{Endpoint: "https://huggingface.co", Retries: 5, Backoff: time.Second, HTTP: &http.Client{}}
	var err error
	if c.EtagTimeout, err = envSeconds("HF_HUB_ETAG_TIMEOUT", DefaultEtagTimeout); err != nil {
		return nil, err
	}
	if c.DownloadTimeout, err = envSeconds("HF_HUB_DOWNLOAD_TIMEOUT", DefaultDownloadTimeout); err != nil {
		return nil, err
	}
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
	return c, nil
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

var (
	commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)
	etagPattern   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
)

// snapshotDir is the cached snapshot of ref's revision: the commit refs/<revision>
// records, or the revision itself when it is a commit. ok is false when the
// cache has no such folder.
func (c *Client) snapshotDir(ref Ref) (dir string, ok bool) {
	commit := ref.Revision
	if !commitPattern.MatchString(commit) {
		raw, err := os.ReadFile(filepath.Join(c.repoDir(ref.Repo), "refs", ref.Revision))
		if err != nil {
			return "", false
		}
		commit = strings.TrimSpace(string(raw))
	}
	dir = filepath.Join(c.repoDir(ref.Repo), "snapshots", commit)
	fi, err := os.Stat(dir)
	return dir, err == nil && fi.IsDir()
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
//
// When the Hub cannot be reached (network errors, timeouts, 429, 5xx), the
// snapshot the cache has for ref's revision is used instead, with a warning on
// Log, as huggingface_hub does.
func (c *Client) Resolve(ctx context.Context, ref Ref, preferFP16 bool) (Files, error) {
	if c.Offline {
		return c.fromCache(ref, preferFP16, fmt.Sprintf("run `rfnet-native download %s` on a machine with internet, or unset HF_HUB_OFFLINE", ref))
	}
	// With the whole snapshot cached, a Hub that is down should cost one
	// request, not the retries' half minute. With part of it cached, only the
	// Hub can supply the rest, so it gets every retry.
	first := c.Retries
	if _, err := c.cachedSnapshot(ref, preferFP16, ""); err == nil {
		first = 0
	}
	files, err := c.resolveOnline(ctx, ref, preferFP16, first)
	// Only a Hub that could not be reached gives way to the cache. An answer
	// does not: 401/403 says the token lost access (or the license is not
	// accepted) and 404 that the repository or revision is gone, which serving
	// the cache would hide. huggingface_hub falls back on those too (all but a
	// missing revision); here HF_HUB_OFFLINE=1 is the way to use the cache anyway.
	var down *unreachableError
	if _, cached := c.snapshotDir(ref); !cached || !errors.As(err, &down) {
		return files, err
	}
	host := c.Endpoint
	if u, err := url.Parse(c.Endpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	files, err = c.fromCache(ref, preferFP16, fmt.Sprintf("%s is unreachable (%v): run `rfnet-native download %s` once it is back, or set HF_HUB_OFFLINE=1 to use the cache without asking the Hub",
		host, down.last, ref))
	if err != nil {
		return Files{}, err
	}
	c.logf("%s unreachable (%v); using the cached snapshot %s of %s@%s", host, down.last, filepath.Base(files.Dir), ref.Repo, ref.Revision)
	return files, nil
}

// resolveOnline is Resolve with the Hub. Its first request (the repository
// listing, or a single file's HEAD) is retried first times, the others
// Retries times.
func (c *Client) resolveOnline(ctx context.Context, ref Ref, preferFP16 bool, first int) (Files, error) {
	var paths []string
	commit := ""
	headRetries := c.Retries
	if ref.File != "" {
		paths = []string{ref.File}
		headRetries = first
	} else {
		info, err := c.repoInfo(ctx, ref, first)
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
		cm, err := c.fetch(ctx, ref, p, headRetries)
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

// fromCache resolves ref from the cache alone (HF_HUB_OFFLINE, or a Hub that
// cannot be reached), verifying the blobs when Verify is set. Every error ends
// with hint: what to do.
func (c *Client) fromCache(ref Ref, preferFP16 bool, hint string) (Files, error) {
	files, err := c.cachedSnapshot(ref, preferFP16, hint)
	if err != nil || !c.Verify {
		return files, err
	}
	for _, p := range files.Paths {
		target, _ := filepath.EvalSymlinks(filepath.Join(files.Dir, p))
		fi, err := os.Stat(target)
		if err == nil {
			err = verifyBlob(target, filepath.Base(target), fi.Size())
		}
		if err != nil {
			return Files{}, fmt.Errorf("hub: %s: %s: %w; the cached copy cannot be fetched again now: %s", ref, p, err, hint)
		}
	}
	return files, nil
}

// cachedSnapshot finds ref's files in its cached snapshot, checking only that
// they are there.
func (c *Client) cachedSnapshot(ref Ref, preferFP16 bool, hint string) (Files, error) {
	dir, ok := c.snapshotDir(ref)
	if !ok {
		return Files{}, fmt.Errorf("hub: %s: %w (no snapshot of %s in %s); %s", ref, ErrOffline, ref.Revision, c.repoDir(ref.Repo), hint)
	}
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
			return Files{}, fmt.Errorf("hub: %s: %w: %v (only the cached snapshot %s was searched); %s", ref, ErrOffline, err, dir, hint)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.IsDir() {
			return Files{}, fmt.Errorf("hub: %s: %w: %s is missing from %s; %s", ref, ErrOffline, p, dir, hint)
		}
	}
	return Files{Dir: dir, Paths: paths}, nil
}

// pipelineFiles are the files of one kind of diffusers pipeline folder that
// Select picks: configs and tokenizer files (required, and optional when
// there), and each model folder's weights file base name.
type pipelineFiles struct {
	kind               string
	required, optional []string
	models             []struct{ dir, base string }
}

var (
	// sdFiles are a Stable Diffusion 1.x/2.x folder's.
	sdFiles = pipelineFiles{
		kind: "a Stable Diffusion",
		required: []string{"model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
			"tokenizer/vocab.json", "tokenizer/merges.txt", "unet/config.json", "vae/config.json"},
		optional: []string{"tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json"},
		models:   []struct{ dir, base string }{{"text_encoder", "model"}, {"unet", "diffusion_pytorch_model"}, {"vae", "diffusion_pytorch_model"}},
	}
	// refinerFiles are an SDXL refiner folder's
	// (stabilityai/stable-diffusion-xl-refiner-1.0): its only text encoder
	// and tokenizer are the second ones. Its vae_1_0/ is not read.
	refinerFiles = pipelineFiles{
		kind: "an SDXL refiner",
		required: []string{"model_index.json", "scheduler/scheduler_config.json", "text_encoder_2/config.json",
			"tokenizer_2/vocab.json", "tokenizer_2/merges.txt", "unet/config.json", "vae/config.json"},
		optional: []string{"tokenizer_2/special_tokens_map.json", "tokenizer_2/tokenizer_config.json"},
		models:   []struct{ dir, base string }{{"text_encoder_2", "model"}, {"unet", "diffusion_pytorch_model"}, {"vae", "diffusion_pytorch_model"}},
	}
)

// Select picks the files a pipeline reads from a diffusers repository
// listing: the configs, the tokenizer, and for each model one .safetensors
// weight file (the fp16 variant when preferFP16 and present). A listing with
// text_encoder_2/ and no text_encoder/ is an SDXL refiner's; any other a
// Stable Diffusion one's (an SDXL base repository, which has both, gets the
// Stable Diffusion set, and loading it says what it is). Pickles (.bin,
// .ckpt) are never chosen; a model with only those is an error.
func Select(names []string, preferFP16 bool) ([]string, error) {
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	set := sdFiles
	if have["text_encoder_2/config.json"] && !have["text_encoder/config.json"] {
		set = refinerFiles
	}
	want := append([]string(nil), set.required...)
	for _, opt := range set.optional {
		if have[opt] {
			want = append(want, opt)
		}
	}
	for _, n := range want {
		if !have[n] {
			return nil, fmt.Errorf("%w: the repository has no %s (is it %s diffusers repository?)", ErrNotFound, n, set.kind)
		}
	}
	for _, m := range set.models {
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

func (c *Client) repoInfo(ctx context.Context, ref Ref, retries int) (*repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s", c.Endpoint, ref.Repo, url.PathEscape(ref.Revision))
	var info repoInfo
	err := c.retry(ctx, ref.String(), retries, func() error {
		resp, err := c.do(ctx, http.MethodGet, u, nil, true, c.etagTimeout())
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
func (c *Client) head(ctx context.Context, ref Ref, path string, retries int) (meta, error) {
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", c.Endpoint, ref.Repo, url.PathEscape(ref.Revision), path)
	var m meta
	err := c.retry(ctx, ref.String()+" "+path, retries, func() error {
		resp, err := c.do(ctx, http.MethodHead, u, nil, false, c.etagTimeout())
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
	// The ETag names the blob file in the cache: one with a slash or ".."
	// would write outside it (a hostile or broken mirror).
	if err == nil && (!etagPattern.MatchString(m.etag) || m.etag == "." || m.etag == "..") {
		err = fmt.Errorf("hub: %s: %s: the Hub sent the ETag %q, which is not a content hash (HF_ENDPOINT %s is not a Hub?)", ref, path, m.etag, c.Endpoint)
	}
	return m, err
}

// fetch makes one file of ref available in the cache and links it into its
// snapshot; it returns the commit. Its HEAD is retried headRetries times.
func (c *Client) fetch(ctx context.Context, ref Ref, path string, headRetries int) (string, error) {
	m, err := c.head(ctx, ref, path, headRetries)
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
// range (after a cut connection or a stall: what arrived stays there),
// verified, then renamed into place.
func (c *Client) download(ctx context.Context, ref Ref, path string, m meta, blob string) error {
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	part := blob + ".incomplete"
	var counter io.Writer
	if c.Progress != nil {
		counter = c.Progress(path, m.size)
	}
	err := c.retry(ctx, ref.String()+" "+path, c.Retries, func() error {
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
		resp, err := c.do(ctx, http.MethodGet, m.location, hdr, true, c.downloadTimeout())
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

// do sends a request with the token and, when follow is false, without
// following redirects. The request ends with a TimeoutError when nothing
// arrives for t's limit (see idleTimer); closing the body releases its timer.
func (c *Client) do(ctx context.Context, method, u string, hdr http.Header, follow bool, t timeout) (*http.Response, error) {
	timer := startIdleTimer(ctx, method, u, t)
	req, err := http.NewRequestWithContext(timer.ctx, method, u, nil)
	if err != nil {
		timer.stop()
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
	resp, err := client.Do(req)
	if err != nil {
		timer.stop()
		return nil, timer.explain(err)
	}
	timer.progress() // the headers arrived
	resp.Body = &idleBody{resp.Body, timer}
	return resp, nil
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
