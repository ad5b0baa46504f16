package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/tensor"
)

// profileFlags are --profile-out and --profile-kernels, on generate (both
// methods) and bench: a Chrome/Perfetto trace of the whole command.
type profileFlags struct {
	out     string
	kernels bool
}

func (p *profileFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.out, "profile-out", "", "write a Chrome/Perfetto trace of the run to this JSON file (open it in ui.perfetto.dev or chrome://tracing): stages, objects, steps, steering iterations, VAE, LLM and SAA as nested spans")
	fs.BoolVar(&p.kernels, "profile-kernels", false, "with --profile-out on --device cuda: time every kernel launch and add them to the trace on a device track (slows the run a little)")
}

// check runs before anything is loaded.
func (p *profileFlags) check(changed func(string) bool) error {
	if p.kernels && p.out == "" {
		return errors.New("--profile-kernels adds GPU kernels to --profile-out's trace: give --profile-out FILE too")
	}
	if changed("profile-out") {
		return checkOutputFile("--profile-out", p.out)
	}
	return nil
}

// recorder is the command's timeline: nil (recording nothing) without --profile-out.
func (p *profileFlags) recorder() *timeline.Recorder {
	if p.out == "" {
		return nil
	}
	return timeline.New()
}

// write writes the trace, also after a failed run (whose spans end where it
// failed); err is the run's error, which comes first.
func (p *profileFlags) write(tl *timeline.Recorder, err error) error {
	if tl == nil {
		return err
	}
	if werr := tl.Write(p.out); werr != nil {
		return errors.Join(err, fmt.Errorf("--profile-out: %w", werr))
	}
	return err
}

// launchProfiler is implemented by backends that time each kernel launch (cuda).
type launchProfiler interface {
	ProfileLaunches(f func() error) ([]cuda.Launch, error)
}

// checkKernels refuses --profile-kernels on a backend with no kernels to time.
func (p *profileFlags) checkKernels(b tensor.Backend) error {
	if _, ok := b.(launchProfiler); p.kernels && !ok {
		return fmt.Errorf("--profile-kernels times GPU kernels; %s has none (use --device cuda, or leave the flag out)", b.Name())
	}
	return nil
}

// run runs f; with --profile-kernels, every kernel launch f makes goes into
// tl on the device track, placed at the host time the profile began plus the
// launch's start on the device (the device runs behind the host, by up to a
// step: the backend synchronizes once per denoising step).
func (p *profileFlags) run(b tensor.Backend, tl *timeline.Recorder, f func() error) error {
	prof, ok := b.(launchProfiler)
	if !p.kernels || !ok || tl == nil {
		return f()
	}
	start := time.Now()
	launches, err := prof.ProfileLaunches(f)
	for _, l := range launches {
		at := start.Add(time.Duration(l.StartMS * float64(time.Millisecond)))
		args := []any{"ms", l.MS}
		if l.GFLOP > 0 {
			args = append(args, "gflop", l.GFLOP)
		}
		tl.Add(timeline.DeviceTrack, "kernel", l.Name, at, time.Duration(l.MS*float64(time.Millisecond)), args...)
	}
	return err
}
