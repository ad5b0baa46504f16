package serve

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rfnet/rfnet-native/serve/jobs"
	"github.com/rfnet/rfnet-native/serve/web"
)

// Server answers the APIs over one loaded model and one job queue.
type Server struct {
	o       Options
	queue   *jobs.Queue
	metrics *metrics
	handler http.Handler
	http    *http.Server
	// previews holds the latest cheap preview (PNG) of each running job, for
	// A1111's current_image; a job's entry goes when it finishes.
	previews sync.Map // job id → []byte
	// draining is set by Shutdown: new work gets 503 and /healthz says so.
	draining atomic.Bool
	// done closes when the queue has shut down: event streams and
	// synchronous requests still waiting then end.
	done     chan struct{}
	doneOnce sync.Once
}

// New opens the job store under o.DataDir (requeuing the jobs a previous
// run left queued) and builds the handler. Serve or Handler put it to work;
// Shutdown stops it.
func New(o Options) (*Server, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	s := &Server{o: o, done: make(chan struct{})}
	s.metrics = newMetrics(o.Model.Backend)
	q, err := jobs.Open(o.DataDir, jobs.Options{Length: o.Queue, Workers: o.Workers, Rebuild: s.rebuild,
		OnFinish: s.finished, OnStep: s.metrics.step, Log: o.Log})
	if err != nil {
		return nil, err
	}
	s.queue = q
	s.metrics.watch(q)
	s.handler = s.routes()
	s.http = &http.Server{
		Handler: s.handler,
		// A client gets 10 s for its headers and a minute for its body (a
		// request body is at most --max-body); answers have no write timeout,
		// as a synchronous generation takes minutes (the event streams lift
		// theirs anyway).
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	return s, nil
}

// Handler is the server's whole HTTP handler (for tests and for callers
// with their own http.Server).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on l until Shutdown; it returns http.ErrServerClosed then.
func (s *Server) Serve(l net.Listener) error { return s.http.Serve(l) }

// Shutdown stops the server as the contract says: new work is refused with
// 503 at once; running jobs may finish until ctx ends, then are canceled;
// queued jobs stay queued on disk for the next start. Then the open
// connections close (event streams and waiting synchronous requests end).
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	qerr := s.queue.Shutdown(ctx)
	s.doneOnce.Do(func() { close(s.done) })
	// The handlers now return promptly: give them a little time of their own,
	// whatever is left of ctx.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	herr := s.http.Shutdown(hctx)
	if errors.Is(qerr, context.DeadlineExceeded) || errors.Is(qerr, context.Canceled) {
		qerr = nil // running jobs were canceled after the grace: that is the contract, not a failure
	}
	return errors.Join(qerr, herr)
}

// routes is the API table; the mux's own 404 and 405 become JSON errors.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, api string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, s.metrics.count(api, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				writeError(w, err)
			}
		}))
	}
	handle("POST /v1/images/generations", "openai", s.openAIImages)
	handle("POST /sdapi/v1/txt2img", "a1111", s.txt2img)
	handle("GET /sdapi/v1/progress", "a1111", s.a1111Progress)
	handle("POST /sdapi/v1/interrupt", "a1111", s.a1111Interrupt)
	handle("GET /sdapi/v1/samplers", "a1111", s.a1111Samplers)
	handle("GET /sdapi/v1/sd-models", "a1111", s.a1111Models)
	handle("POST /v1/rfnet/plan", "rfnet", s.rfnetPlan)
	handle("POST /v1/rfnet/jobs", "rfnet", s.rfnetSubmit)
	handle("GET /v1/jobs", "jobs", s.listJobs)
	handle("GET /v1/jobs/{id}", "jobs", s.getJob)
	handle("DELETE /v1/jobs/{id}", "jobs", s.deleteJob)
	handle("GET /v1/jobs/{id}/files/{name...}", "jobs", s.jobFile)
	handle("GET /v1/jobs/{id}/events", "jobs", s.jobEvents)
	handle("GET /healthz", "health", s.healthz)
	mux.Handle("GET /metrics", s.metrics.handler())
	page := s.metrics.count("web", web.Handler().ServeHTTP)
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /static/", page)
	return s.authenticate(jsonFallback(mux))
}

// jsonFallback answers the paths mux has no handler for, and the wrong
// methods of known paths, with the API's JSON errors (405 with the mux's
// Allow header).
func jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // which sets the request's path values; Handler does not
			return
		}
		// The mux's own answer says whether the path is known (405, with
		// Allow) or not (404, or a redirect to a cleaned path).
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.code {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, newError(http.StatusMethodNotAllowed, "", "%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")))
		case http.StatusNotFound:
			writeError(w, newError(http.StatusNotFound, "", "%s %s: no such path", r.Method, r.URL.Path))
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// statusRecorder keeps the status and headers of the mux's error handlers.
type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return len(b), nil
}
func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// authenticate asks for "Authorization: Bearer <key>" on every path but
// /healthz, /metrics, / and /static/ when the server has a key. The key is
// compared in constant time.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.o.APIKey == "" {
		return next
	}
	want := []byte("Bearer " + s.o.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/healthz" || p == "/metrics" || p == "/" || strings.HasPrefix(p, "/static/") {
			next.ServeHTTP(w, r)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			s.metrics.requests.WithLabelValues("auth", "401").Inc()
			writeError(w, newError(http.StatusUnauthorized, "", "missing or wrong API key: send Authorization: Bearer <key>"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
