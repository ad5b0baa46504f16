package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int    // where it starts, for messages
	op   string // upper case: FROM, RUN, COPY, ...
	args string
}

// stage is one FROM and the instructions under it.
type stage struct {
	base, name string // "nvidia/cuda:11.8.0-devel-ubuntu22.04", "build" (AS)
	body       []instruction
}

// parseDockerfile reads the instructions of a Dockerfile, lightly: comments
// and blank lines dropped, "\" continuations joined, one stage per FROM.
// Enough for the checks below, not a full parser (no heredocs, no escape
// directive).
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		in := instruction{start, strings.ToUpper(op), strings.TrimSpace(args)}
		cur.Reset()
		if in.op == "FROM" {
			f := strings.Fields(in.args)
			s := stage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.op != "ARG" {
				t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.op)
			}
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// all returns the arguments of every instruction op of a stage.
func (s stage) all(op string) []string {
	var out []string
	for _, in := range s.body {
		if in.op == op {
			out = append(out, in.args)
		}
	}
	return out
}

// last returns the arguments of the stage's last instruction op, or "".
func (s stage) last(op string) string {
	all := s.all(op)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// exec decodes the exec form of CMD or ENTRYPOINT (a JSON array): the shell
// form would run the server under /bin/sh, which does not pass SIGTERM on.
func exec(t *testing.T, op, args string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("Dockerfile: %s %s: want the exec form, a JSON array (%v)", op, args, err)
	}
	return argv
}

// envValue returns the value of NAME in a stage's ENV instructions
// (NAME=value pairs).
func (s stage) envValue(name string) string {
	value := ""
	for _, args := range s.all("ENV") {
		for _, kv := range strings.Fields(args) {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				value = v
			}
		}
	}
	return value
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// image is the Dockerfile's run stage, checked, with what the manifests
// compare against.
type image struct {
	uid     int64
	port    string   // EXPOSE
	volumes []string // VOLUME
	cmd     []string // CMD
}

// readImage parses the Dockerfile at the repository root and checks its shape:
// a build stage from the CUDA devel image that runs `make cuda BIN=X`, a run
// stage from the runtime image of the same CUDA release that copies X from it
// to where ENTRYPOINT finds it, pinned base tags, a numeric non-root USER, Go
// at go.mod's version, and the serve command's address, data folder and Hugging
// Face cache on EXPOSE and VOLUME.
func readImage(t *testing.T) image {
	t.Helper()
	stages := parseDockerfile(t, filepath.Join("..", "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("Dockerfile: %d stages, want 2 (build, run)", len(stages))
	}
	build, run := stages[0], stages[1]
	for _, s := range stages {
		repo, tag, ok := strings.Cut(s.base, ":")
		if !ok || tag == "" || tag == "latest" || strings.Contains(tag, "$") {
			t.Errorf("Dockerfile: FROM %s: want a pinned tag (not latest, not a variable)", s.base)
		}
		if repo != "nvidia/cuda" {
			t.Errorf("Dockerfile: FROM %s: want an nvidia/cuda image", s.base)
		}
	}
	if build.name != "build" || !strings.HasSuffix(build.base, "-devel-ubuntu22.04") {
		t.Errorf("Dockerfile: first stage FROM %s AS %s, want a CUDA devel image AS build", build.base, build.name)
	}
	if want := strings.Replace(build.base, "-devel-", "-runtime-", 1); run.base != want {
		t.Errorf("Dockerfile: run stage FROM %s, want %s (the build's CUDA release, with cuBLAS)", run.base, want)
	}

	// Go at go.mod's version.
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := ""
	for _, l := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	if got := build.last("ARG"); got != "GO_VERSION="+goVersion {
		t.Errorf("Dockerfile: build stage ARG %q, want GO_VERSION=%s (go.mod's go line)", got, goVersion)
	}

	// The binary the build makes is the one the run stage copies and starts.
	bin := ""
	for _, r := range build.all("RUN") {
		if rest, ok := strings.CutPrefix(r, "make cuda BIN="); ok {
			bin = strings.Fields(rest)[0]
		}
	}
	if bin == "" {
		t.Fatal("Dockerfile: the build stage has no RUN make cuda BIN=...")
	}
	copied := false
	entry := exec(t, "ENTRYPOINT", run.last("ENTRYPOINT"))
	for _, c := range run.all("COPY") {
		f := strings.Fields(c)
		if len(f) == 3 && f[0] == "--from=build" {
			copied = true
			if f[1] != bin {
				t.Errorf("Dockerfile: COPY %s: the build stage makes %s", c, bin)
			}
			if f[2] != "/usr/local/bin/"+entry[0] && f[2] != entry[0] {
				t.Errorf("Dockerfile: COPY to %s, but ENTRYPOINT runs %s", f[2], entry[0])
			}
		}
	}
	if !copied {
		t.Error("Dockerfile: the run stage copies nothing from the build stage")
	}

	// A numeric non-root user, as runAsNonRoot needs.
	user, _, _ := strings.Cut(run.last("USER"), ":")
	uid, err := strconv.ParseInt(user, 10, 64)
	if err != nil || uid == 0 {
		t.Errorf("Dockerfile: USER %q, want a numeric uid other than 0", run.last("USER"))
	}

	im := image{uid: uid, port: run.last("EXPOSE"), cmd: exec(t, "CMD", run.last("CMD"))}
	for _, v := range run.all("VOLUME") {
		var vs []string
		if err := json.Unmarshal([]byte(v), &vs); err != nil {
			vs = strings.Fields(v)
		}
		im.volumes = append(im.volumes, vs...)
	}
	onVolume := func(what, path string) {
		t.Helper()
		for _, v := range im.volumes {
			if under(path, v) {
				return
			}
		}
		t.Errorf("Dockerfile: %s %q is on none of the volumes %v", what, path, im.volumes)
	}
	onVolume("HF_HOME", run.envValue("HF_HOME"))
	if im.cmd[0] != "serve" {
		t.Fatalf("Dockerfile: CMD %v, want serve", im.cmd)
	}
	data, _ := flagValue(im.cmd, "--data")
	onVolume("CMD's --data", data)
	addr, _ := flagValue(im.cmd, "--addr")
	if host, port, _ := strings.Cut(addr, ":"); host != "0.0.0.0" || port != im.port {
		t.Errorf("Dockerfile: CMD's --addr %q, want 0.0.0.0:%s (EXPOSE; serve listens on loopback by default)", addr, im.port)
	}
	return im
}

// flagValue returns the value of a flag in args, given as "--name value" or
// "--name=value".
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestDockerfile(t *testing.T) {
	readImage(t)
	// Fatbins built on the host must not reach the build stage: make would
	// take one newer than its source for up to date.
	ignore, err := os.ReadFile(filepath.Join("..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin", "build", "cuda/fatbin"} {
		if !strings.Contains("\n"+string(ignore)+"\n", "\n"+want+"\n") {
			t.Errorf(".dockerignore: no line %q", want)
		}
	}
}
