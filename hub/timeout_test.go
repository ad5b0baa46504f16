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
)

// guarded is the context of a test that a client without timeouts would hang:
// the test-side deadline turns that hang into a failure.
func guarded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustContain(t *testing.T, err error, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("error %v, want one that says %q", err, w)
		}
	}
}

// wantTimeout checks that err is a TimeoutError of the client's field, which
// is how a caller tells which of its own settings to name.
func wantTimeout(t *testing.T, err error, field string) {
	t.Helper()
	var te *TimeoutError
	if !errors.As(err, &te) || te.Field != field {
		t.Fatalf("error %v, want a TimeoutError of %s", err, field)
	}
}

func TestStalledMetadataRequestTimesOut(t *testing.T) {
	for _, c := range []struct{ name, stall, request string }{
		{"repository info", "GET /api/", "GET %s/api/models/org/tiny-sd1/revision/main"},
		{"HEAD", "HEAD /org/tiny-sd1/resolve/", "HEAD %s/org/tiny-sd1/resolve/main/model_index.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, s, cl := tinyHub(t)
			cl.EtagTimeout = 100 * time.Millisecond
			s.Stall = c.stall
			_, err := cl.Resolve(guarded(t), Ref{Repo: "org/tiny-sd1", Revision: "main"}, false)
			mustContain(t, err, "giving up after 4 tries", strings.Replace(c.request, "%s", s.URL, 1), "100ms", "HF_HUB_ETAG_TIMEOUT", "EtagTimeout")
			wantTimeout(t, err, "EtagTimeout")
		})
	}
}

// A CDN that stops sending mid-file: the idle timeout ends the request, and
// the retry resumes from what arrived.
func TestStalledBlobResumes(t *testing.T) {
	repo, s, c := tinyHub(t)
	c.DownloadTimeout = 200 * time.Millisecond
	ref := Ref{Repo: "org/tiny-sd1", Revision: "main", File: "unet/diffusion_pytorch_model.safetensors"}
	s.StallAfter, s.StallOnce = 1000, true
	files, err := c.Resolve(guarded(t), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(files.Dir, files.Paths[0]))
	if string(got) != string(repo.Files[ref.File]) {
		t.Fatal("the resumed file differs")
	}
	if !hasRequest(s, "GET /lfs/"+fakehub.SHA256(repo.Files[ref.File])+" bytes=1000-") {
		t.Fatalf("no ranged request after the stall: %v", s.Requests())
	}
}

// The download timeout is an idle timeout: a blob that keeps arriving, if
// slowly, is never cut off, however long the whole download takes.
func TestSlowBlobIsNotCutOff(t *testing.T) {
	repo, s, c := tinyHub(t)
	c.DownloadTimeout = 150 * time.Millisecond
	c.Retries = 0 // a timeout would be an error, not a resumed retry
	ref := Ref{Repo: "org/tiny-sd1", Revision: "main", File: "unet/diffusion_pytorch_model.safetensors"}
	data := repo.Files[ref.File]
	// 20 chunks 50 ms apart: the body takes about 1 s, the gaps are a third of the timeout.
	s.Trickle, s.TrickleBytes = 50*time.Millisecond, (len(data)+19)/20
	files, err := c.Resolve(guarded(t), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(files.Dir, files.Paths[0])); string(got) != string(data) {
		t.Fatal("the file differs")
	}
	for _, r := range s.Requests() {
		if strings.Contains(r, "bytes=") {
			t.Fatalf("the slow body was cut and resumed: %v", s.Requests())
		}
	}
}

func TestBlobStalledForeverFails(t *testing.T) {
	repo, s, c := tinyHub(t)
	c.DownloadTimeout = 200 * time.Millisecond
	ref := Ref{Repo: "org/tiny-sd1", Revision: "main", File: "unet/diffusion_pytorch_model.safetensors"}
	s.StallAfter = 1000
	_, err := c.Resolve(guarded(t), ref, false)
	mustContain(t, err, "giving up after 4 tries", "GET "+s.URL+"/lfs/", "200ms", "HF_HUB_DOWNLOAD_TIMEOUT", "DownloadTimeout")
	wantTimeout(t, err, "DownloadTimeout")
	sha := fakehub.SHA256(repo.Files[ref.File])
	if !hasRequest(s, "GET /lfs/"+sha+" bytes=1000-") {
		t.Fatalf("the retries did not resume: %v", s.Requests())
	}
	// What arrived stays for the next run to resume from.
	part := filepath.Join(c.CacheDir, "models--org--tiny-sd1", "blobs", sha+".incomplete")
	if fi, err := os.Stat(part); err != nil || fi.Size() != 1000 {
		t.Fatalf("%s: %v, %v", part, fi, err)
	}
}

func hasRequest(s *fakehub.Server, line string) bool {
	for _, l := range s.Requests() {
		if l == line {
			return true
		}
	}
	return false
}

func TestTimeoutVariables(t *testing.T) {
	t.Setenv("HF_HUB_ETAG_TIMEOUT", "")
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "")
	c, err := FromEnv()
	if err != nil || c.EtagTimeout != 10*time.Second || c.DownloadTimeout != 10*time.Second {
		t.Fatalf("defaults: %v, %v", c, err)
	}
	t.Setenv("HF_HUB_ETAG_TIMEOUT", "2.5")
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "60")
	c, err = FromEnv()
	if err != nil || c.EtagTimeout != 2500*time.Millisecond || c.DownloadTimeout != time.Minute {
		t.Fatalf("set: %v, %v", c, err)
	}
	for _, name := range []string{"HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"} {
		for _, bad := range []string{"ten", "0", "-1", "10s", "inf", "NaN", "1e300"} {
			t.Setenv(name, bad)
			_, err := FromEnv()
			mustContain(t, err, name+"="+`"`+bad+`"`, "seconds")
		}
		t.Setenv(name, "")
	}
}
