package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// chromium is Debian's chromium, which .ci/run installs; ok is false (and
// the test says why) where it is missing and RFNET_REQUIRE_CHROMIUM is unset.
func chromium(t *testing.T) (bin string, ok bool) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Log("chromium is not installed here; .ci/run installs it and renders the pages")
		if os.Getenv("RFNET_REQUIRE_CHROMIUM") != "" {
			t.Fatal("RFNET_REQUIRE_CHROMIUM is set but chromium is missing")
		}
		return "", false
	}
	return bin, true
}

// headless runs chromium without a window, network or profile, with args.
func headless(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s%s", err, out, stderr.Bytes())
	}
	return out
}

// screenshot renders a page in headless Chromium and checks that a PNG came out.
func screenshot(t *testing.T, page string) {
	bin, ok := chromium(t)
	if !ok {
		return
	}
	png := filepath.Join(t.TempDir(), "report.png")
	headless(t, bin, "--window-size=1400,1800", "--screenshot="+png, "file://"+page)
	if fi, err := os.Stat(png); err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot %v %v", fi, err)
	}
}

// imagesShown loads page in headless Chromium, inside a frame of a page of the
// test's own that reads back every image of it, and fails for each image that
// did not load or is empty; it returns how many loaded.
func imagesShown(t *testing.T, page string) int {
	bin, ok := chromium(t)
	if !ok {
		return 0
	}
	harness := filepath.Join(t.TempDir(), "harness.html")
	os.WriteFile(harness, []byte(`<!DOCTYPE html><html><body><pre id="r"></pre><iframe id="f" src="file://`+page+`"></iframe><script>
document.getElementById('f').onload = function() {
  var imgs = this.contentDocument.images, out = [];
  for (var i = 0; i < imgs.length; i++) out.push((imgs[i].complete && imgs[i].naturalWidth > 0 ? 'shown ' : 'missing ') + imgs[i].getAttribute('src'));
  document.getElementById('r').textContent = out.join('\n');
};
</script></body></html>`), 0o644)
	dom := string(headless(t, bin, "--allow-file-access-from-files", "--dump-dom", "file://"+harness))
	m := regexp.MustCompile(`(?s)<pre id="r">(.*?)</pre>`).FindStringSubmatch(dom)
	if m == nil || m[1] == "" {
		t.Fatalf("chromium read no images of %s:\n%s", page, dom)
	}
	shown := 0
	for _, line := range strings.Split(m[1], "\n") {
		if strings.HasPrefix(line, "shown ") {
			shown++
		} else {
			t.Errorf("%s: %s", filepath.Base(page), line)
		}
	}
	return shown
}
