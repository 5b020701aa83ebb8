package registrar

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// metrics are written in the Prometheus text format by hand.
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // route, status → count
	latency  map[string]*histogram
	batches  histogram
}

var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
var batchBuckets = []float64{1, 10, 50, 100, 250, 500, 1000, 2000, 5000}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

func (h *histogram) add(v float64, buckets []float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(buckets))
	}
	for i, b := range buckets {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += v
	h.n++
}

func (h *histogram) write(b *strings.Builder, name, labels string, buckets []float64) {
	var cum uint64
	sep := ""
	if labels != "" {
		sep = ","
	}
	for i, le := range buckets {
		if h.counts != nil {
			cum += h.counts[i]
		}
		fmt.Fprintf(b, "%s_bucket{%s%sle=\"%g\"} %d\n", name, labels, sep, le, cum)
	}
	fmt.Fprintf(b, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, h.n)
	if labels != "" {
		labels = "{" + labels + "}"
	}
	fmt.Fprintf(b, "%s_sum%s %g\n%s_count%s %d\n", name, labels, h.sum, name, labels, h.n)
}

func newMetrics() *metrics {
	return &metrics{requests: map[[2]string]uint64{}, latency: map[string]*histogram{}}
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.mu.Lock()
	m.requests[[2]string{route, strconv.Itoa(status)}]++
	h := m.latency[route]
	if h == nil {
		h = &histogram{}
		m.latency[route] = h
	}
	h.add(d.Seconds(), latencyBuckets)
	m.mu.Unlock()
}

func (m *metrics) batch(n int) {
	m.mu.Lock()
	m.batches.add(float64(n), batchBuckets)
	m.mu.Unlock()
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	st, err := s.stats.Stats(ctx, s.now().Add(-api.OnlineWindow))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	var b strings.Builder
	m := s.metrics
	m.mu.Lock()
	b.WriteString("# HELP registrar_http_requests_total HTTP requests by route pattern and status.\n# TYPE registrar_http_requests_total counter\n")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(&b, "registrar_http_requests_total{route=%q,status=%q} %d\n", k[0], k[1], m.requests[k])
	}
	b.WriteString("# HELP registrar_http_request_duration_seconds Request latency by route pattern.\n# TYPE registrar_http_request_duration_seconds histogram\n")
	routes := make([]string, 0, len(m.latency))
	for k := range m.latency {
		routes = append(routes, k)
	}
	sort.Strings(routes)
	for _, rt := range routes {
		m.latency[rt].write(&b, "registrar_http_request_duration_seconds", fmt.Sprintf("route=%q", rt), latencyBuckets)
	}
	b.WriteString("# HELP registrar_uptime_batch_size Uptime reports written per transaction.\n# TYPE registrar_uptime_batch_size histogram\n")
	m.batches.write(&b, "registrar_uptime_batch_size", "", batchBuckets)
	m.mu.Unlock()
	if g, ok := s.st.(store.GroupStats); ok {
		groups, writes := g.GroupStats()
		fmt.Fprintf(&b, "# HELP registrar_store_groups_total Write transactions committed by group commit.\n# TYPE registrar_store_groups_total counter\nregistrar_store_groups_total %d\n", groups)
		fmt.Fprintf(&b, "# HELP registrar_store_group_writes_total Writes (account, node, uptime batch) those transactions carried.\n# TYPE registrar_store_group_writes_total counter\nregistrar_store_group_writes_total %d\n", writes)
	}
	fmt.Fprintf(&b, "# HELP registrar_totals_compute_seconds How long the grid's totals (counts, capacity) last took to compute; when long, they are reused for a while.\n# TYPE registrar_totals_compute_seconds gauge\nregistrar_totals_compute_seconds %g\n", s.stats.lastTook().Seconds())
	fmt.Fprintf(&b, "# HELP registrar_nodes Registered nodes.\n# TYPE registrar_nodes gauge\nregistrar_nodes %d\n", st.Nodes)
	fmt.Fprintf(&b, "# HELP registrar_nodes_online Nodes seen within the last 40 minutes.\n# TYPE registrar_nodes_online gauge\nregistrar_nodes_online %d\n", st.Online)
	fmt.Fprintf(&b, "# HELP registrar_farms Registered farms.\n# TYPE registrar_farms gauge\nregistrar_farms %d\n", st.Farms)
	fmt.Fprintf(&b, "# HELP registrar_accounts Registered accounts (twins).\n# TYPE registrar_accounts gauge\nregistrar_accounts %d\n", st.Accounts)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String()))
}
