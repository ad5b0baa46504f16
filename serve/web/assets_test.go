package web

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// files returns the page's files by name (index.html, static/...).
func files(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(assets, p)
		out[p] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// commentLine says whether a line of JavaScript or CSS is a comment (the only
// place a page file may name a URL elsewhere, say a spec it follows).
func commentLine(line string) bool {
	l := strings.TrimSpace(line)
	return strings.HasPrefix(l, "//") || strings.HasPrefix(l, "/*") || strings.HasPrefix(l, "*")
}

func TestNoExternalURLs(t *testing.T) {
	// A URL with a scheme, or a protocol-relative one opening a string or url().
	external := regexp.MustCompile(`(?i)https?:|['"(]//[^/]`)
	for name, text := range files(t) {
		markup := path.Ext(name) == ".html" || path.Ext(name) == ".svg"
		if markup {
			text = regexp.MustCompile(`(?s)<!--.*?-->`).ReplaceAllString(text, "")
			// An XML namespace is a name that is never fetched.
			text = regexp.MustCompile(`\sxmlns(:\w+)?="[^"]*"`).ReplaceAllString(text, "")
		}
		for i, line := range strings.Split(text, "\n") {
			if !markup && commentLine(line) {
				continue
			}
			if m := external.FindString(line); m != "" {
				t.Errorf("%s:%d names a URL elsewhere (%q): %s", name, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}

// page is index.html parsed: its ids, the targets of its labels, its form
// controls without a label, and its src and href values.
type page struct {
	ids       map[string]int
	labelFor  []string
	unlabeled []string
	links     []string
}

func parsePage(t *testing.T, text string) page {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	p := page{ids: map[string]int{}}
	attr := func(n *html.Node, key string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == key {
				return a.Val, true
			}
		}
		return "", false
	}
	var controls []*html.Node
	var walk func(n *html.Node, inLabel bool)
	walk = func(n *html.Node, inLabel bool) {
		if n.Type == html.ElementNode {
			if id, ok := attr(n, "id"); ok {
				p.ids[id]++
			}
			for _, k := range []string{"src", "href"} {
				if v, ok := attr(n, k); ok {
					p.links = append(p.links, v)
				}
			}
			switch n.Data {
			case "label":
				if f, ok := attr(n, "for"); ok {
					p.labelFor = append(p.labelFor, f)
				}
				inLabel = true
			case "input", "select", "textarea":
				if typ, _ := attr(n, "type"); typ != "hidden" && !inLabel {
					controls = append(controls, n)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inLabel)
		}
	}
	walk(doc, false)
	for _, c := range controls {
		id, _ := attr(c, "id")
		_, aria := attr(c, "aria-label")
		if !aria && (id == "" || !contains(p.labelFor, id)) {
			p.unlabeled = append(p.unlabeled, c.Data+"#"+id)
		}
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestScriptIdsExistInIndex(t *testing.T) {
	all := files(t)
	p := parsePage(t, all["index.html"])
	for id, n := range p.ids {
		if n > 1 {
			t.Errorf("index.html: id %q %d times", id, n)
		}
	}
	for _, f := range p.labelFor {
		if p.ids[f] == 0 {
			t.Errorf("index.html: a label is for #%s, which does not exist", f)
		}
	}
	for _, c := range p.unlabeled {
		t.Errorf("index.html: %s has no label", c)
	}
	// Scripts find elements by id only through dom.js's el('id'), so the ids
	// below are all the ids they use.
	elCall := regexp.MustCompile(`\bel\(\s*'([^']*)'\s*\)`)
	used := 0
	for name, text := range all {
		if path.Ext(name) != ".js" {
			continue
		}
		if name != "static/dom.js" && strings.Contains(text, "getElementById") {
			t.Errorf("%s calls getElementById; use el() from dom.js", name)
		}
		if name != "static/dom.js" && regexp.MustCompile(`\bel\(\s*[^'\s]`).MatchString(text) {
			t.Errorf("%s calls el() with a computed id, which this test cannot check", name)
		}
		for _, m := range elCall.FindAllStringSubmatch(text, -1) {
			used++
			if p.ids[m[1]] == 0 {
				t.Errorf("%s uses #%s, which index.html lacks", name, m[1])
			}
		}
	}
	if used < 20 {
		t.Errorf("found only %d el() calls: is the pattern out of date?", used)
	}
}

func TestPageReferencesResolve(t *testing.T) {
	all := files(t)
	served := map[string]bool{sharedStyle: true}
	for name := range all {
		if strings.HasPrefix(name, "static/") {
			served["/"+name] = true
		}
	}
	for _, l := range parsePage(t, all["index.html"]).links {
		if !served[l] {
			t.Errorf("index.html refers to %q, which Handler does not serve", l)
		}
	}
	// Every module import is relative and names a file of static/.
	imp := regexp.MustCompile(`(?m)^\s*import\s[^;]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'`)
	for name, text := range all {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range imp.FindAllStringSubmatch(text, -1) {
			spec := m[1] + m[2]
			if !strings.HasPrefix(spec, "./") || all[path.Join("static", spec)] == "" {
				t.Errorf("%s imports %q: want ./file.js of static/", name, spec)
			}
		}
	}
}
