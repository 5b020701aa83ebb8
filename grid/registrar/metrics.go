package registrar

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the registrar's Prometheus metrics, in a registry of the
// server's own (two servers in one process, as in tests, do not collide).
// The names are the ones dashboards already use.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // route, status
	latency  *prometheus.HistogramVec // route
	// Group commits of the store (store.Grouped).
	uptimeBatch                          prometheus.Histogram
	groups, groupWrites, retries, missed prometheus.Counter
}

var (
	latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	batchBuckets   = []float64{1, 10, 50, 100, 250, 500, 1000, 2000, 5000}
)

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registrar_http_requests_total", Help: "HTTP requests by route pattern and status."}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "registrar_http_request_duration_seconds", Help: "Request latency by route pattern.", Buckets: latencyBuckets}, []string{"route"}),
		uptimeBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "registrar_uptime_batch_size", Help: "Uptime reports written per transaction.", Buckets: batchBuckets}),
		groups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_store_groups_total", Help: "Write transactions committed by group commit."}),
		groupWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_store_group_writes_total", Help: "Writes (account, node, uptime report) those transactions carried."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_store_group_retries_total", Help: "Tries of a write group again after a transient database failure."}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_store_group_deadline_exceeded_total", Help: "Writes answered 503 because their group was not committed within its deadline."}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.uptimeBatch, m.groups, m.groupWrites, m.retries, m.missed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "registrar_totals_compute_seconds",
			Help: "How long the grid's totals (counts, capacity) last took to compute; when long, they are reused for a while."},
			func() float64 { return s.stats.lastTook().Seconds() }),
		&totals{s: s},
	)
	return m
}

// observe counts a request.
func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// group counts a group commit of the store.
func (m *metrics) group(g store.Group) {
	m.groups.Inc()
	m.groupWrites.Add(float64(g.Writes))
	m.retries.Add(float64(g.Tries - 1))
	if g.Deadline {
		m.missed.Add(float64(g.Writes))
	}
	if g.Uptime > 0 && g.Err == nil {
		m.uptimeBatch.Observe(float64(g.Uptime)) // written in one transaction
	}
}

func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.HTTPErrorOnError,
	})
}

// totals are the grid's counts, read from the store (through the stats
// cache) when /metrics is scraped.
type totals struct{ s *Server }

var (
	nodesDesc    = prometheus.NewDesc("registrar_nodes", "Registered nodes.", nil, nil)
	onlineDesc   = prometheus.NewDesc("registrar_nodes_online", "Nodes seen within the last 40 minutes.", nil, nil)
	farmsDesc    = prometheus.NewDesc("registrar_farms", "Registered farms.", nil, nil)
	accountsDesc = prometheus.NewDesc("registrar_accounts", "Registered accounts (twins).", nil, nil)
)

func (t *totals) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodesDesc, onlineDesc, farmsDesc, accountsDesc} {
		ch <- d
	}
}

func (t *totals) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := t.s.stats.Stats(ctx, t.s.now().Add(-api.OnlineWindow))
	if err != nil {
		// The scrape fails (500) rather than showing zeros.
		ch <- prometheus.NewInvalidMetric(nodesDesc, err)
		return
	}
	for _, v := range []struct {
		d *prometheus.Desc
		n int64
	}{{nodesDesc, st.Nodes}, {onlineDesc, st.Online}, {farmsDesc, st.Farms}, {accountsDesc, st.Accounts}} {
		ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, float64(v.n))
	}
}
