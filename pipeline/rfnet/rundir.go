package rfnet

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
)

// Output is where RunToDir writes one run and what it names the run by.
type Output struct {
	Dir string // the out-dir (WriteArtifacts' files)
	// Image, when not "", gets a copy of the image with its parameters text
	// (generate's --out).
	Image      string
	Version    string // the program's, for run.json
	Checkpoint infotext.Checkpoint
	// Wrap, when not nil, runs the generation (Run) inside it: generate
	// profiles it this way (--profile-out). It returns run's error.
	Wrap func(run func() error) error
}

// RunToDir runs plan's scene with m and writes the out-dir: the trace
// streams into Dir's trace.partial.jsonl, which WriteArtifacts renames
// trace.jsonl with the rest of the run, so a failed run leaves an earlier
// run's files as they were (and its error names the partial trace). generate
// and serve both run RFNet through it.
func RunToDir(m *pipeline.Model, plan *llm.Plan, o Options, out Output) (*Result, error) {
	// A batch's seed-<S>/ folder does not exist yet when its trace opens.
	if err := os.MkdirAll(out.Dir, 0o755); err != nil {
		return nil, err
	}
	trace, err := OpenTrace(filepath.Join(out.Dir, PartialTrace))
	if err != nil {
		return nil, err
	}
	defer trace.Close()
	o.Trace = chainTrace(o.Trace, trace.Add)
	var res *Result
	run := func() (err error) {
		res, err = Run(m, plan, o)
		return err
	}
	if out.Wrap != nil {
		err = out.Wrap(run)
	} else {
		err = run()
	}
	if err != nil {
		return nil, fmt.Errorf("%w (the trace of this run is in %s)", err, trace.Path())
	}
	span := o.Timeline.Begin("write artifacts", "out_dir", out.Dir)
	defer span.End()
	if err := WriteArtifacts(out.Dir, res, o.Config, DescribeModel(m, out.Version), out.Checkpoint, trace); err != nil {
		return nil, err
	}
	if out.Image != "" {
		params := Parameters(res, o.Config, out.Checkpoint).Format()
		if err := pipeline.WritePNG(out.Image, pipeline.ToRGBA(res.Image), map[string]string{"parameters": params}); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// chainTrace calls first (may be nil), then then, with each event.
func chainTrace(first, then func(TraceEvent)) func(TraceEvent) {
	if first == nil {
		return then
	}
	return func(e TraceEvent) {
		first(e)
		then(e)
	}
}
