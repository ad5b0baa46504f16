package serve

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rfnet/rfnet-native/serve/jobs"
	"github.com/rfnet/rfnet-native/tensor"
)

// metrics are the contract's Prometheus metrics, on the server's own
// registry (two servers in one process, as in tests, do not collide).
type metrics struct {
	reg      *prometheus.Registry
	finished *prometheus.CounterVec   // kind, state
	duration *prometheus.HistogramVec // kind: a job's run, started to finished
	steps    *prometheus.HistogramVec // kind: one denoising step
	requests *prometheus.CounterVec   // api, code
}

// memoryStats is what a backend that tracks its device memory offers (cuda).
type memoryStats interface {
	MemoryStats() (inUse, peak int64)
}

func newMetrics(b tensor.Backend) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rfnet_jobs_finished_total",
			Help: "Jobs that reached a final state, by kind and state."}, []string{"kind", "state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rfnet_job_duration_seconds",
			Help:    "Seconds from a job's start to its end, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14)}, []string{"kind"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rfnet_step_duration_seconds",
			Help:    "Seconds of one denoising step (with its steering iterations), by kind.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rfnet_http_requests_total",
			Help: "HTTP requests answered, by API and status code."}, []string{"api", "code"}),
	}
	m.reg.MustRegister(m.finished, m.duration, m.steps, m.requests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if mem, ok := b.(memoryStats); ok {
		gauge := func(kind string, pick func(inUse, peak int64) int64) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rfnet_device_memory_bytes",
				Help: "Device memory the backend holds (in_use) and its peak.", ConstLabels: prometheus.Labels{"kind": kind}},
				func() float64 { return float64(pick(mem.MemoryStats())) })
		}
		m.reg.MustRegister(gauge("in_use", func(n, _ int64) int64 { return n }), gauge("peak", func(_, p int64) int64 { return p }))
	}
	return m
}

// watch adds the gauges read from q at each scrape.
func (m *metrics) watch(q *jobs.Queue) {
	m.reg.MustRegister(queueCollector{q})
}

// queueCollector reads the queue's Stats once per scrape.
type queueCollector struct{ q *jobs.Queue }

var (
	queueDepthDesc = prometheus.NewDesc("rfnet_queue_depth", "Jobs waiting in the queue.", nil, nil)
	runningDesc    = prometheus.NewDesc("rfnet_jobs_running", "Jobs running.", nil, nil)
	jobsDesc       = prometheus.NewDesc("rfnet_jobs", "Jobs in the store, by state.", []string{"state"}, nil)
)

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- runningDesc
	ch <- jobsDesc
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.q.Stats()
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, float64(st.Running))
	for _, state := range jobs.States {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(st.ByState[state]), string(state))
	}
}

// job counts a finished job (jobs.Options.OnFinish).
func (m *metrics) job(j jobs.Job) {
	m.finished.WithLabelValues(j.Kind, string(j.State)).Inc()
	if j.Started != nil && j.Finished != nil {
		m.duration.WithLabelValues(j.Kind).Observe(j.Finished.Sub(*j.Started).Seconds())
	}
}

// step times a denoising step (jobs.Options.OnStep).
func (m *metrics) step(kind string, seconds float64) {
	m.steps.WithLabelValues(kind).Observe(seconds)
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// count wraps an API's handler to count its answers by status code.
func (m *metrics) count(api string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &codeWriter{ResponseWriter: w}
		h(cw, r)
		if cw.code == 0 {
			cw.code = http.StatusOK
		}
		m.requests.WithLabelValues(api, strconv.Itoa(cw.code)).Inc()
	})
}

// codeWriter remembers the status code; Unwrap lets http.ResponseController
// reach the connection (flushes and deadlines of the event streams).
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
