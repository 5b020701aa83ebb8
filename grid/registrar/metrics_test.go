package registrar

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t), Config{})
	farmer := e.account()
	tw := e.account()
	id := e.node(tw, e.farm(farmer, "metricsfarm"))
	e.expect(201, "POST", fmt.Sprintf("/api/v1/nodes/%d/uptime", id), api.Uptime{Uptime: 1, Timestamp: time.Now().Unix()}, tw, nil)
	e.expect(404, "GET", "/api/v1/farms/999", nil, nil, nil)
	m := get(t, e.url+"/metrics")
	for _, want := range []string{
		`registrar_http_requests_total{route="POST /api/v1/accounts",status="201"} 2`,
		`registrar_http_requests_total{route="GET /api/v1/farms/{farm_id}",status="404"} 1`,
		`registrar_http_request_duration_seconds_count{route="POST /api/v1/nodes"} 1`,
		`registrar_uptime_batch_size_count 1`,
		"registrar_nodes 1\n", "registrar_nodes_online 1\n", "registrar_farms 1\n",
		"registrar_store_groups_total ", "registrar_store_group_writes_total ", "registrar_totals_compute_seconds ",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// TestDashboardHTML checks the page without a browser: totals and links.
func TestDashboardHTML(t *testing.T) {
	st := storetest.SQLite().Open(t)
	fill(t, st, 120)
	e := newEnv(t, st, Config{})
	page := get(t, e.url+"/")
	for _, want := range []string{`id="nodes-total">120<`, `id="nodes-online">60<`, `id="nodes-offline">60<`, `id="farms-total">10<`, `<svg id="chart"`, `href="/node/50"`, `href="/?page=2"`} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, `href="/node/51"`) {
		t.Error("first page lists more than 50 nodes")
	}
	if p3 := get(t, e.url+"/?page=3"); !strings.Contains(p3, `href="/node/101"`) || strings.Contains(p3, `href="/?page=4"`) {
		t.Error("page 3 should hold nodes 101.. and be the last")
	}
	if n := get(t, e.url+"/node/7"); !strings.Contains(n, `id="node-id">7<`) || !strings.Contains(n, "eth0") {
		t.Error("node page lacks the node id or its interfaces")
	}
	if css := get(t, e.url+"/assets/style.css"); !strings.Contains(css, "body") {
		t.Error("embedded stylesheet not served")
	}
}

// TestMetricNames: every metric the registrar had before client_golang
// keeps its name, type and labels (dashboards query them), read back with
// Prometheus's own text parser.
func TestMetricNames(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t), Config{})
	tws, ids := e.grid(1, "namesfarm")
	if code, body, _ := e.report(tws[0], ids[0]); code != 201 {
		t.Fatalf("uptime report: %d %s", code, body)
	}
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	for name, want := range map[string]struct {
		typ    dto.MetricType
		labels string
	}{
		"registrar_http_requests_total":           {dto.MetricType_COUNTER, "route,status"},
		"registrar_http_request_duration_seconds": {dto.MetricType_HISTOGRAM, "route"},
		"registrar_uptime_batch_size":             {dto.MetricType_HISTOGRAM, ""},
		"registrar_store_groups_total":            {dto.MetricType_COUNTER, ""},
		"registrar_store_group_writes_total":      {dto.MetricType_COUNTER, ""},
		"registrar_totals_compute_seconds":        {dto.MetricType_GAUGE, ""},
		"registrar_nodes":                         {dto.MetricType_GAUGE, ""},
		"registrar_nodes_online":                  {dto.MetricType_GAUGE, ""},
		"registrar_farms":                         {dto.MetricType_GAUGE, ""},
		"registrar_accounts":                      {dto.MetricType_GAUGE, ""},
		// New with the single group-commit path.
		"registrar_store_group_retries_total":           {dto.MetricType_COUNTER, ""},
		"registrar_store_group_deadline_exceeded_total": {dto.MetricType_COUNTER, ""},
	} {
		f := fams[name]
		if f == nil {
			t.Errorf("%s missing", name)
			continue
		}
		if f.GetType() != want.typ {
			t.Errorf("%s is a %v, want %v", name, f.GetType(), want.typ)
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName())
			}
			if got := strings.Join(ls, ","); got != want.labels {
				t.Errorf("%s has labels %q, want %q", name, got, want.labels)
			}
		}
	}
	if h := fams["registrar_http_request_duration_seconds"]; h != nil {
		var les []float64
		for _, b := range h.GetMetric()[0].GetHistogram().GetBucket() {
			les = append(les, b.GetUpperBound())
		}
		if want := slices.Concat(latencyBuckets, []float64{math.Inf(1)}); fmt.Sprint(les) != fmt.Sprint(want) {
			t.Errorf("latency buckets %v, want %v", les, want)
		}
	}
	if b := fams["registrar_uptime_batch_size"]; b == nil || b.GetMetric()[0].GetHistogram().GetSampleCount() != 1 {
		t.Errorf("registrar_uptime_batch_size: want one group observed after one report")
	}
}
