package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/internal/fakehub"
	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// tinyRepo is the tiny SD 1.x diffusers folder as a Hub repository, plus a
// pickle and an fp16 variant of the UNet that must be chosen or skipped.
func tinyRepo(t *testing.T) *fakehub.Repo {
	t.Helper()
	files := map[string][]byte{}
	root := fixtures.Path("models", "tiny-sd1")
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			data, _ := os.ReadFile(p)
			files[filepath.ToSlash(rel)] = data
		}
		return nil
	})
	files["unet/diffusion_pytorch_model.bin"] = []byte("a pickle that must never be fetched")
	files["unet/diffusion_pytorch_model.fp16.safetensors"] = files["unet/diffusion_pytorch_model.safetensors"]
	files["README.md"] = []byte("# tiny\n")
	return &fakehub.Repo{Commit: strings.Repeat("ab", 20), Files: files}
}

func testClient(t *testing.T, s *fakehub.Server) *Client {
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	c.Endpoint, c.CacheDir, c.Token, c.Offline = s.URL, t.TempDir(), "", false
	c.Backoff, c.Retries = time.Millisecond, 3
	return c
}

// tinyHub serves tinyRepo as org/tiny-sd1 until the test ends and returns
// the repository, the server and a client of it.
func tinyHub(t *testing.T) (*fakehub.Repo, *fakehub.Server, *Client) {
	repo := tinyRepo(t)
	s := fakehub.New(map[string]*fakehub.Repo{"org/tiny-sd1": repo})
	t.Cleanup(s.Close)
	return repo, s, testClient(t, s)
}

func downloads(log []string) []string {
	var out []string
	for _, l := range log {
		if strings.HasPrefix(l, "GET ") && !strings.Contains(l, "/api/") {
			out = append(out, l)
		}
	}
	return out
}

func TestColdDownloadCacheLayoutAndWarmRun(t *testing.T) {
	repo, s, c := tinyHub(t)
	ref, _, _ := ParseRef("org/tiny-sd1")
	files, err := c.Resolve(context.Background(), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(c.CacheDir, "models--org--tiny-sd1")
	if files.Dir != filepath.Join(dir, "snapshots", repo.Commit) {
		t.Fatalf("snapshot %s", files.Dir)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, "refs", "main")); string(raw) != repo.Commit {
		t.Fatalf("refs/main = %q", raw)
	}
	unet := "unet/diffusion_pytorch_model.safetensors"
	link, err := os.Readlink(filepath.Join(files.Dir, unet))
	sha := fakehub.SHA256(repo.Files[unet])
	if err != nil || link != filepath.Join("..", "..", "..", "blobs", sha) {
		t.Fatalf("snapshot link %q, %v", link, err)
	}
	cfgLink, _ := os.Readlink(filepath.Join(files.Dir, "unet", "config.json"))
	if cfgLink != filepath.Join("..", "..", "..", "blobs", fakehub.GitSHA1(repo.Files["unet/config.json"])) {
		t.Fatalf("config link %q", cfgLink)
	}
	for _, p := range files.Paths {
		if strings.HasSuffix(p, ".bin") || strings.Contains(p, "fp16") || p == "README.md" {
			t.Fatalf("fetched %s", p)
		}
	}
	if len(files.Paths) != 12 {
		t.Fatalf("%d files: %v", len(files.Paths), files.Paths)
	}
	before := len(downloads(s.Requests()))
	if _, err := c.Resolve(context.Background(), ref, false); err != nil {
		t.Fatal(err)
	}
	if got := downloads(s.Requests())[before:]; len(got) != 0 {
		t.Fatalf("the second run downloaded %v", got)
	}
	// fp16 preferred: the variant file is fetched instead.
	files, err = c.Resolve(context.Background(), ref, true)
	if err != nil || !strings.Contains(strings.Join(files.Paths, " "), "unet/diffusion_pytorch_model.fp16.safetensors") {
		t.Fatalf("fp16: %v %v", err, files.Paths)
	}
}

func TestResumeAfterCutConnection(t *testing.T) {
	repo, s, c := tinyHub(t)
	ref := Ref{Repo: "org/tiny-sd1", Revision: "main", File: "unet/diffusion_pytorch_model.safetensors"}
	s.CutAfter = 1000
	files, err := c.Resolve(context.Background(), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(files.Dir, files.Paths[0]))
	if string(got) != string(repo.Files[ref.File]) {
		t.Fatal("the resumed file differs")
	}
	resumed := false
	for _, l := range s.Requests() {
		if strings.HasSuffix(l, "bytes=1000-") {
			resumed = true
		}
	}
	if !resumed {
		t.Fatalf("no ranged request after the cut: %v", s.Requests())
	}
}

func TestDamagedBlobIsFetchedAgain(t *testing.T) {
	repo, s, c := tinyHub(t)
	ref := Ref{Repo: "org/tiny-sd1", Revision: "main", File: "vae/diffusion_pytorch_model.safetensors"}
	files, err := c.Resolve(context.Background(), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := filepath.EvalSymlinks(filepath.Join(files.Dir, files.Paths[0]))
	for _, damage := range []func(){
		func() { os.Truncate(blob, 100) }, // wrong size: always caught
		func() { // same size, one byte flipped: caught when verifying
			b, _ := os.ReadFile(blob)
			b[len(b)/2] ^= 0xff
			os.WriteFile(blob, b, 0o644)
		},
	} {
		damage()
		c.Verify = true
		before := len(downloads(s.Requests()))
		if _, err := c.Resolve(context.Background(), ref, false); err != nil {
			t.Fatal(err)
		}
		if len(downloads(s.Requests())) == before {
			t.Fatal("the damaged blob was not fetched again")
		}
		if got, _ := os.ReadFile(blob); string(got) != string(repo.Files[ref.File]) {
			t.Fatal("the blob is still damaged")
		}
	}
}

func TestGatedRepository(t *testing.T) {
	repo := tinyRepo(t)
	repo.Gated, repo.Token = true, "hf_secret"
	s := fakehub.New(map[string]*fakehub.Repo{"org/gated": repo})
	defer s.Close()
	c := testClient(t, s)
	_, err := c.Resolve(context.Background(), Ref{Repo: "org/gated", Revision: "main"}, false)
	if !errors.Is(err, ErrGated) || !strings.Contains(err.Error(), "set HF_TOKEN") || !strings.Contains(err.Error(), "/org/gated") {
		t.Fatalf("without a token: %v", err)
	}
	c.Token = "hf_secret"
	if _, err := c.Resolve(context.Background(), Ref{Repo: "org/gated", Revision: "main"}, false); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if _, err := c.Resolve(context.Background(), Ref{Repo: "org/missing", Revision: "main"}, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing repository: %v", err)
	}
	if _, err := c.Resolve(context.Background(), Ref{Repo: "org/gated", Revision: "v9"}, false); err == nil || !strings.Contains(err.Error(), `revision "v9"`) {
		t.Fatalf("missing revision: %v", err)
	}
}

func TestOffline(t *testing.T) {
	_, s, c := tinyHub(t)
	ref := Ref{Repo: "org/tiny-sd1", Revision: "main"}
	if _, err := c.Resolve(context.Background(), ref, false); err != nil {
		t.Fatal(err)
	}
	s.Close() // no network from here on
	c.Offline = true
	files, err := c.Resolve(context.Background(), ref, false)
	if err != nil || len(files.Paths) != 12 {
		t.Fatalf("offline from the cache: %v %v", err, files.Paths)
	}
	_, err = c.Resolve(context.Background(), Ref{Repo: "org/other", Revision: "main"}, false)
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "rfnet-native download org/other") {
		t.Fatalf("offline, not cached: %v", err)
	}
	os.Remove(filepath.Join(files.Dir, "vae", "config.json"))
	if _, err := c.Resolve(context.Background(), ref, false); !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "vae/config.json") {
		t.Fatalf("offline, a file missing: %v", err)
	}
}

// A cache written by huggingface_hub (laid out here by hand: blobs named by
// their hash, refs/main, relative snapshot links) is used as it is.
func TestUsesPythonToolsCache(t *testing.T) {
	repo, s, c := tinyHub(t)
	dir := filepath.Join(c.CacheDir, "models--org--tiny-sd1")
	for path, data := range repo.Files {
		etag := fakehub.GitSHA1(data)
		if fakehub.IsLFS(path) {
			etag = fakehub.SHA256(data)
		}
		blob := filepath.Join(dir, "blobs", etag)
		os.MkdirAll(filepath.Dir(blob), 0o755)
		os.WriteFile(blob, data, 0o644)
		link := filepath.Join(dir, "snapshots", repo.Commit, path)
		os.MkdirAll(filepath.Dir(link), 0o755)
		rel, _ := filepath.Rel(filepath.Dir(link), blob)
		os.Symlink(rel, link)
	}
	os.MkdirAll(filepath.Join(dir, "refs"), 0o755)
	os.WriteFile(filepath.Join(dir, "refs", "main"), []byte(repo.Commit), 0o644)
	if _, err := c.Resolve(context.Background(), Ref{Repo: "org/tiny-sd1", Revision: "main"}, false); err != nil {
		t.Fatal(err)
	}
	if got := downloads(s.Requests()); len(got) != 0 {
		t.Fatalf("downloaded %v although the cache had everything", got)
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]Ref{
		"sd21-base":                       {Repo: "stabilityai/stable-diffusion-2-1-base", Revision: "main"},
		"sam-vit-base":                    {Repo: "facebook/sam-vit-base", Revision: "main"},
		"sdxl-refiner":                    {Repo: "stabilityai/stable-diffusion-xl-refiner-1.0", Revision: "main"},
		"org/name":                        {Repo: "org/name", Revision: "main"},
		"org/name@v1.0":                   {Repo: "org/name", Revision: "v1.0"},
		"hf://org/name/dir/m.safetensors": {Repo: "org/name", Revision: "main", File: "dir/m.safetensors"},
	} {
		got, ok, err := ParseRef(in)
		if err != nil || !ok || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v, %v", in, got, ok, err)
		}
	}
	for _, local := range []string{"./model", "/abs/path", "model.safetensors", "a/b/c"} {
		if _, ok, _ := ParseRef(local); ok {
			t.Errorf("%q taken for a Hub name", local)
		}
	}
	if _, _, err := ParseRef("hf://org/name/model.ckpt"); err == nil || !strings.Contains(err.Error(), "pickles") {
		t.Errorf("ckpt: %v", err)
	}
}

// An SDXL refiner repository (text_encoder_2/ and tokenizer_2/, no
// text_encoder/) gets the refiner's files, fp16 weights when asked; the SD
// set and the released refiner's other folders (vae_1_0/) are left alone.
func TestSelectRefinerFiles(t *testing.T) {
	listing := []string{"model_index.json", "README.md", "scheduler/scheduler_config.json",
		"text_encoder_2/config.json", "text_encoder_2/model.safetensors", "text_encoder_2/model.fp16.safetensors",
		"tokenizer_2/merges.txt", "tokenizer_2/special_tokens_map.json", "tokenizer_2/tokenizer_config.json", "tokenizer_2/vocab.json",
		"unet/config.json", "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
		"unet/diffusion_pytorch_model.bin", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
		"vae/diffusion_pytorch_model.fp16.safetensors", "vae_1_0/config.json", "vae_1_0/diffusion_pytorch_model.safetensors",
		"sd_xl_refiner_1.0.safetensors"}
	common := "model_index.json scheduler/scheduler_config.json text_encoder_2/config.json tokenizer_2/vocab.json tokenizer_2/merges.txt " +
		"unet/config.json vae/config.json tokenizer_2/special_tokens_map.json tokenizer_2/tokenizer_config.json "
	for _, c := range []struct {
		fp16 bool
		want string
	}{
		{false, common + "text_encoder_2/model.safetensors unet/diffusion_pytorch_model.safetensors vae/diffusion_pytorch_model.safetensors"},
		{true, common + "text_encoder_2/model.fp16.safetensors unet/diffusion_pytorch_model.fp16.safetensors vae/diffusion_pytorch_model.fp16.safetensors"},
	} {
		got, err := Select(listing, c.fp16)
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("fp16 %v: %v, %v\nwant %s", c.fp16, got, err, c.want)
		}
	}
	_, err := Select(listing[:len(listing)-8], false) // no vae/
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no vae/config.json (is it an SDXL refiner diffusers repository?)") {
		t.Errorf("no vae/: %v", err)
	}
}
