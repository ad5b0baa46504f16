package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/sam"
)

// Options configure a Server.
type Options struct {
	Model   *pipeline.Model // loaded; the server does not close it
	Planner llm.Planner     // RFNet's stage 1 for requests without a plan
	// Checkpoint names the model in the parameters texts (computed once,
	// infotext.CheckpointOf).
	Checkpoint infotext.Checkpoint
	// LoadTime is how long loading Model took (the sidecars' seconds.load).
	LoadTime time.Duration
	DataDir  string // jobs and their files (serve/jobs' store)
	Queue    int    // jobs waiting at most; 429 beyond
	Workers  int    // jobs running at once: 1, or more on the CPU (see checkWorkers)
	APIKey   string // "": no authentication
	// PublicURL is the base of the OpenAI API's url answers
	// (https://example.com); "": the request's scheme and Host.
	PublicURL string
	Limits    Limits
	// SAM, when not nil, cuts RFNet's object masks (§8.1, rfnet.Options.SAM);
	// without it they come from the attention (§8.2) and settings.sam_box
	// is refused. Loaded; the server does not close it.
	SAM *sam.Model
	// SDXL, when not nil, is the SDXL refiner RFNet jobs refine their
	// images with after the overall run (§11.2, rfnet.RefineToDir), unless
	// a request says "sdxl": false; its Context and Progress are each
	// job's. Loaded; the server does not close it.
	SDXL *rfnet.SDXL
	// AllowV runs RFNet on a v-prediction model, which rfnet.CheckPrediction refuses.
	AllowV  bool
	Version string
	Log     *slog.Logger // nil: slog.Default()
	// KeepAlive is the interval of the event streams' comment lines (15s when 0).
	KeepAlive time.Duration
}

// Limits bound what one request may ask for (the contract's "Limits").
type Limits struct {
	MaxWidth, MaxHeight int   // multiples of 8, from 8
	MaxSteps            int   // denoising steps
	MaxImages           int   // images of one request
	MaxPrompt           int   // bytes of a prompt or negative prompt
	MaxBody             int64 // bytes of a request body
	MaxObjects          int   // objects of an RFNet plan
	MaxGuidance         float64
	// JobTimeout is a job's deadline from its submission; a request's
	// timeout_seconds may only shorten it.
	JobTimeout time.Duration
}

// DefaultLimits are the contract's defaults.
func DefaultLimits() Limits {
	return Limits{MaxWidth: 1024, MaxHeight: 1024, MaxSteps: 150, MaxImages: 4, MaxPrompt: 2000, MaxBody: 1 << 20,
		MaxObjects: llm.DefaultOptions().MaxObjects, MaxGuidance: 30, JobTimeout: 30 * time.Minute}
}

// Check reports the first limit that cannot be, naming its flag.
func (l Limits) Check() error {
	for _, side := range []struct {
		flag string
		v    int
	}{{"--max-width", l.MaxWidth}, {"--max-height", l.MaxHeight}} {
		if err := pipeline.CheckSide(side.flag, side.v); err != nil {
			return err
		}
	}
	for _, n := range []struct {
		flag string
		v    int64
	}{{"--max-steps", int64(l.MaxSteps)}, {"--max-images", int64(l.MaxImages)}, {"--max-prompt", int64(l.MaxPrompt)},
		{"--max-body", l.MaxBody}, {"--max-objects", int64(l.MaxObjects)}} {
		if n.v < 1 {
			return fmt.Errorf("%s %d: want 1 or more", n.flag, n.v)
		}
	}
	switch {
	case !(l.MaxGuidance >= 0):
		return fmt.Errorf("guidance limit %v: want 0 or more", l.MaxGuidance)
	case l.JobTimeout <= 0:
		return fmt.Errorf("--job-timeout %s: want a positive duration (such as 30m)", l.JobTimeout)
	}
	return nil
}

// check fills defaults and refuses what cannot run.
func (o *Options) check() error {
	switch {
	case o.Model == nil:
		return errors.New("serve: no model")
	case o.Planner == nil:
		return errors.New("serve: no planner")
	case o.DataDir == "":
		return errors.New("serve: --data: no folder")
	case o.Queue < 1:
		return fmt.Errorf("--queue %d: want 1 or more", o.Queue)
	}
	// A backend's name starts with its kind: "cpu (2 threads)", "cuda ...".
	device, _, _ := strings.Cut(o.Model.Backend.Name(), " ")
	if err := checkWorkers(o.Workers, device); err != nil {
		return err
	}
	if err := o.Limits.Check(); err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	return nil
}

// checkWorkers allows more than one job at a time on the CPU only. There two
// generations on one *pipeline.Model give the results they give one after
// the other (TestConcurrentGenerationsOnOneModel and
// TestConcurrentRFNetRunsOnOneModel, under -race): a generation's state, its
// gradient tape and its attention captures are its own. On cuda the backend
// computes on one stream, so a second worker would only interleave kernels
// and hold a second set of activations.
func checkWorkers(n int, device string) error {
	switch {
	case n < 1:
		return fmt.Errorf("--workers %d: want 1 or more", n)
	case n > 1 && device != "cpu":
		return fmt.Errorf("--workers %d: the %s backend computes on one stream, so jobs run one at a time (--workers 1)", n, device)
	}
	return nil
}
