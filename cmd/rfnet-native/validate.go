package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/pipeline"
)

// The checks below run before any model is loaded, so a typo costs nothing.
// A flag whose zero value means "the default" (--width, --steps) is checked
// only when it was set: set to 0 or less it is refused, never taken as the
// default.

// check validates generate's numeric flags; changed reports whether a flag
// was given on the command line.
func (g *generateFlags) check(changed func(string) bool) error {
	if changed("steps") && g.steps < 1 {
		return fmt.Errorf("--steps %d: want 1 or more", g.steps)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"width", g.width}, {"height", g.height}} {
		if changed(f.name) {
			if err := pipeline.CheckSide("--"+f.name, f.v); err != nil {
				return err
			}
		}
	}
	if err := checkFloat("--guidance", g.guidance, 0); err != nil {
		return err
	}
	return g.llm.check()
}

// checkFloat refuses NaN, infinities and values below lo: --guidance NaN used
// to run a whole generation and fail on the sidecar, Inf to give a black image.
func checkFloat(flag string, v, lo float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo {
		return fmt.Errorf("%s %v: want a finite number, %g or more", flag, v, lo)
	}
	return nil
}

// check validates the planner's flags.
func (f *llmFlags) check() error {
	if f.maxObjects < 1 {
		return fmt.Errorf("--max-objects %d: want 1 or more (it caps the objects of every plan: the LLM's, the offline planner's and --plan files)", f.maxObjects)
	}
	return checkLLMTransport(f.timeout, f.retries, f.reasoningTokens)
}

// checkOutputFile makes sure path can be written before minutes of work go
// into what it will hold: a name is given, it is not a folder, and its folder
// (created when missing) takes new files.
func checkOutputFile(flag, path string) error {
	if path == "" {
		return fmt.Errorf("%s is empty: name the file to write", flag)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s %s is a folder: name a file inside it", flag, path)
	}
	dest, err := atomicfile.Destination(path)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return checkWritableDir(flag, path, filepath.Dir(dest))
}

// checkDistinct refuses output flags that name one file twice: the file
// written last would replace the other (--out c.png --save-latents c.png lost
// the latents, --out c.json lost the sidecar to the PNG).
func checkDistinct(outputs []struct{ flag, path string }) error {
	seen := map[string]string{}
	for _, o := range outputs {
		if o.path == "" {
			continue
		}
		key, err := filepath.Abs(o.path)
		if err != nil {
			key = o.path
		}
		if d, err := atomicfile.Destination(key); err == nil {
			key = d
		}
		if first, ok := seen[key]; ok {
			return fmt.Errorf("%s and %s both write %s: name two files", first, o.flag, o.path)
		}
		seen[key] = o.flag
	}
	return nil
}

// checkOutputDir is checkOutputFile for a folder of results.
func checkOutputDir(flag, dir string) error {
	if dir == "" {
		return fmt.Errorf("%s is empty: name the folder to write into", flag)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s %s is a file, not a folder", flag, dir)
	}
	return checkWritableDir(flag, dir, dir)
}

// checkWritableDir creates dir when missing and writes a file into it.
func checkWritableDir(flag, path, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s %s: cannot create the folder %s: %w", flag, path, dir, cause(err))
	}
	probe, err := os.CreateTemp(dir, ".rfnet-write-check-*")
	if err != nil {
		return fmt.Errorf("%s %s: cannot write into %s: %w", flag, path, dir, cause(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// cause is a file operation's error without the operation and path, which
// the message around it already names.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
