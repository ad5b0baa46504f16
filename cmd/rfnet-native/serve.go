package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/serve"
)

// serveFlags are the flags of `rfnet-native serve`.
type serveFlags struct {
	model                      modelFlags
	llm                        llmFlags
	addr, apiKey, data, public string
	maxBody                    string
	queue, workers             int
	limits                     serve.Limits
	grace                      time.Duration
	allowV                     bool
	sam                        string
	sdxl                       sdxlFlags
	// ready, when not nil, gets the address once listening (tests).
	ready func(addr string)
	// stop, when not nil, ends the server as SIGTERM does (tests).
	stop <-chan struct{}
}

func setupServe(fs *pflag.FlagSet) func() error {
	f := &serveFlags{}
	f.register(fs)
	return func() error { return f.run(fs) }
}

// apiKeyEnv is the variable --api-key defaults to, so the key need not show
// in the process list.
const apiKeyEnv = "RFNET_API_KEY"

func (f *serveFlags) register(fs *pflag.FlagSet) {
	d := serve.DefaultLimits()
	f.model.register(fs)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:7860", "listen on this host:port (loopback unless told otherwise: 0.0.0.0:7860 for every interface)")
	fs.StringVar(&f.apiKey, "api-key", "", "require Authorization: Bearer KEY on the APIs (default $"+apiKeyEnv+"; empty: none)")
	fs.IntVar(&f.queue, "queue", 16, "jobs waiting at most (running ones not counted); more get 429")
	fs.IntVar(&f.workers, "workers", 1, "jobs running at once on the one model (more than 1 on the CPU backend only; cuda computes on one stream)")
	fs.StringVar(&f.data, "data", defaultDataDir(), "folder of the jobs and their files (kept across restarts)")
	fs.StringVar(&f.public, "public-url", "", "base of the OpenAI API's url answers, such as https://images.example.com (default: the request's scheme and Host)")
	fs.IntVar(&f.limits.MaxWidth, "max-width", d.MaxWidth, "largest image width a request may ask for (a multiple of 8)")
	fs.IntVar(&f.limits.MaxHeight, "max-height", d.MaxHeight, "largest image height a request may ask for (a multiple of 8)")
	fs.IntVar(&f.limits.MaxSteps, "max-steps", d.MaxSteps, "most denoising steps of a request")
	fs.IntVar(&f.limits.MaxImages, "max-images", d.MaxImages, "most images of one request (OpenAI's n, A1111's batch_size × n_iter)")
	fs.IntVar(&f.limits.MaxPrompt, "max-prompt", d.MaxPrompt, "most bytes of a prompt or negative prompt")
	fs.StringVar(&f.maxBody, "max-body", "1MiB", "largest request body (bytes, or with KiB, MiB, KB, MB); larger ones get 413")
	fs.DurationVar(&f.limits.JobTimeout, "job-timeout", d.JobTimeout, "a job's deadline from its submission (a request's timeout_seconds may only shorten it)")
	fs.DurationVar(&f.grace, "shutdown-grace", time.Minute, "on SIGTERM or SIGINT, how long running jobs may finish before they are canceled")
	fs.BoolVar(&f.allowV, "allow-v", false, "rfnet: run on a v-prediction model (SD 2.x 768), which the reference does not support")
	fs.StringVar(&f.sam, "sam", "", "rfnet: cut each object's mask with Segment Anything (§8.1): a SamModel folder or a Hub name such as sam-vit-base (default: facebook/sam-vit-base when the Hugging Face cache has it, else the attention mask of §8.2)")
	fs.BoolVar(&f.sdxl.on, "sdxl", false, `rfnet: refine each image with the SDXL refiner after the overall run, as generate --sdxl does (a request's "sdxl": false skips it); the job's image is then `+rfnet.SDXLImage)
	fs.StringVar(&f.sdxl.weights, "sdxl-weights", "sdxl-refiner", "rfnet --sdxl: the refiner: a diffusers folder, a single .safetensors file (with --sdxl-tokenizer), or a Hub name (the Hugging Face cache, else downloaded)")
	f.sdxl.registerSingleFile(fs)
	fs.IntVar(&f.sdxl.size, "sdxl-size", rfnet.SDXLSize, "rfnet --sdxl: the side images are resized to (Lanczos) before refining; the published run's is 1024 (the strength is each request's settings.sdxl_step_ratio)")
	f.llm.register(fs)
	f.limits.MaxGuidance = d.MaxGuidance
}

// defaultDataDir is rfnet-native/serve under the user's cache folder, else
// ./rfnet-serve.
func defaultDataDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "rfnet-native", "serve")
	}
	return "rfnet-serve"
}

func (f *serveFlags) check(changed func(string) bool) error {
	if !changed("api-key") {
		f.apiKey = os.Getenv(apiKeyEnv)
	}
	if _, _, err := net.SplitHostPort(f.addr); err != nil {
		return fmt.Errorf("--addr %q: want host:port, such as 127.0.0.1:7860: %v", f.addr, err)
	}
	if f.data == "" {
		return errors.New("--data is empty: name the folder of the jobs")
	}
	if f.public != "" && !strings.HasPrefix(f.public, "http://") && !strings.HasPrefix(f.public, "https://") {
		return fmt.Errorf("--public-url %q: want an http:// or https:// address", f.public)
	}
	if f.queue < 1 {
		return fmt.Errorf("--queue %d: want 1 or more", f.queue)
	}
	if f.workers < 1 {
		return fmt.Errorf("--workers %d: want 1 or more", f.workers)
	}
	if f.grace < 0 {
		return fmt.Errorf("--shutdown-grace %s: want 0 or more", f.grace)
	}
	n, err := parseBytes(f.maxBody)
	if err != nil {
		return fmt.Errorf("--max-body %q: %v", f.maxBody, err)
	}
	f.limits.MaxBody = n
	f.limits.MaxObjects = f.llm.maxObjects
	var c rfnet.Config // the step ratio is each request's: no flag sets it
	if err := f.sdxl.apply(changed, &c); err != nil {
		return err
	}
	if err := f.limits.Check(); err != nil {
		return err
	}
	return f.llm.check()
}

// parseBytes reads a size: a whole number of bytes with an optional unit
// (B, KB, MB, GB in powers of 1000; KiB, MiB, GiB in powers of 1024).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.n
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 1 || v > (1<<40)/mult {
		return 0, errors.New("want a positive size in bytes, such as 1048576 or 1MiB")
	}
	return v * mult, nil
}

func (f *serveFlags) run(fs *pflag.FlagSet) error {
	if err := f.check(fs.Changed); err != nil {
		return err
	}
	// Flags are checked; the rule for more than one worker needs the device,
	// known once loaded (serve.New checks it).
	start := time.Now()
	m, err := f.model.load()
	if err != nil {
		return err
	}
	defer m.Close()
	load := time.Since(start)
	ckpt, err := infotext.CheckpointOf(m)
	if err != nil {
		return err
	}
	segmenter, err := rfnetSAM(f.sam, m.Backend, m.DType, f.model.offline, os.Stderr)
	if err != nil {
		return err
	}
	sdxl, closeSDXL, err := f.sdxl.load(context.Background(), m, f.model.offline)
	if err != nil {
		return err
	}
	defer closeSDXL()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := serve.New(serve.Options{Model: m, Planner: f.llm.planner(os.Stderr), Checkpoint: ckpt, LoadTime: load,
		DataDir: f.data, Queue: f.queue, Workers: f.workers, APIKey: f.apiKey, PublicURL: f.public, Limits: f.limits,
		SAM: segmenter, SDXL: sdxl, AllowV: f.allowV, Version: version, Log: log})
	if err != nil {
		return err
	}
	// Signals are caught before the listening line: whoever reads that line
	// and sends SIGTERM must get the graceful stop, not the default death.
	sig, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stopSignals()
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		s.Shutdown(context.Background())
		return fmt.Errorf("--addr %s: %w", f.addr, err)
	}
	log.Info("rfnet-native serve: listening", "url", "http://"+l.Addr().String(), "model", m.Path, "device", m.Backend.Name(),
		"data", f.data, "auth", f.apiKey != "", "sam", segmenter != nil, "sdxl", sdxl != nil)
	if f.ready != nil {
		f.ready(l.Addr().String())
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	select {
	case err := <-served:
		return err // the listener failed
	case <-sig.Done():
	case <-f.stop:
	}
	log.Info("rfnet-native serve: shutting down", "grace", f.grace)
	ctx, cancel := context.WithTimeout(context.Background(), f.grace)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		return err
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("rfnet-native serve: stopped")
	return nil
}
