package hub

import (
	"fmt"
	"regexp"
	"strings"
)

// Ref names what to fetch: a repository at a revision, and for a single-file
// checkpoint the file's path in it.
type Ref struct {
	Repo     string // org/name
	Revision string // a branch, tag or commit; "main" by default
	File     string // for hf:// references: the file's path in the repository
}

func (r Ref) String() string {
	s := r.Repo
	if r.File != "" {
		s = "hf://" + r.Repo + "/" + r.File
	}
	if r.Revision != "main" {
		s += "@" + r.Revision
	}
	return s
}

// Alias is a short name for a common checkpoint.
type Alias struct {
	Name, Ref, About string
}

// Aliases are the short names --weights (and --sam, for SAM) accepts. The SD 1.5 weights moved when
// runwayml/stable-diffusion-v1-5 was taken down; the copy kept by the
// stable-diffusion-v1-5 organization has the same files.
var Aliases = []Alias{
	{"sd14", "CompVis/stable-diffusion-v1-4", "SD 1.4, diffusers folder, 512×512, epsilon"},
	{"sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", "SD 1.5, diffusers folder, 512×512, epsilon"},
	{"sd21-base", "stabilityai/stable-diffusion-2-1-base", "SD 2.1-base, diffusers folder, 512×512, epsilon (the RFNet paper's model)"},
	{"sd21", "stabilityai/stable-diffusion-2-1", "SD 2.1, diffusers folder, 768×768, v-prediction"},
	{"sam-vit-base", "facebook/sam-vit-base", "Segment Anything ViT-B for --sam, transformers folder (config.json, model.safetensors)"},
	{"sdxl-refiner", "stabilityai/stable-diffusion-xl-refiner-1.0", "SDXL refiner 1.0, diffusers folder, for refine and --sdxl (not a generate model)"},
}

var repoPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseRef reads a Hub reference; ok is false for anything else (a local path).
// A name that exists on disk is the caller's to check first.
func ParseRef(s string) (Ref, bool, error) {
	for _, a := range Aliases {
		if s == a.Name {
			return Ref{Repo: a.Ref, Revision: "main"}, true, nil
		}
	}
	if rest, ok := strings.CutPrefix(s, "hf://"); ok {
		rest, rev, _ := strings.Cut(rest, "@")
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) != 3 || parts[2] == "" || !repoPattern.MatchString(parts[0]+"/"+parts[1]) {
			return Ref{}, false, fmt.Errorf("hub: %q: want hf://org/name/path/to/file.safetensors[@revision]", s)
		}
		if !strings.HasSuffix(parts[2], ".safetensors") {
			return Ref{}, false, fmt.Errorf("hub: %q: only .safetensors files are read (never .ckpt or .bin pickles)", s)
		}
		if rev == "" {
			rev = "main"
		}
		if !safePath(parts[2]) {
			return Ref{}, false, fmt.Errorf("hub: %q: the file path %q leaves the repository", s, parts[2])
		}
		if !safePath(rev) {
			return Ref{}, false, fmt.Errorf("hub: %q: revision %q is not a branch, tag or commit name", s, rev)
		}
		return Ref{Repo: parts[0] + "/" + parts[1], Revision: rev, File: parts[2]}, true, nil
	}
	repo, rev, _ := strings.Cut(s, "@")
	if !repoPattern.MatchString(repo) || strings.Contains(repo, "..") || strings.HasPrefix(s, ".") {
		return Ref{}, false, nil
	}
	if rev == "" {
		rev = "main"
	}
	if !safePath(rev) {
		return Ref{}, false, fmt.Errorf("hub: %q: revision %q is not a branch, tag or commit name", s, rev)
	}
	return Ref{Repo: repo, Revision: rev}, true, nil
}

// safePath reports whether p, a revision or a file path, stays inside the
// cache folder it is joined to (refs/<revision>, snapshots/<commit>/<file>):
// relative, with no empty, "." or ".." part and no backslash.
func safePath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}
