package registrar

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/client/regtest"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

const stellar = "GBZ6VHJ4KQ5Q7J4Y5G2N3X6TZ3V5W6Q7R2S3T4U5V6W7X8Y9Z2A3B4C5"

// sleeper replaces the module's sleep: it records every wait and either
// returns at once (auto) or waits for the test to release it.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	auto  bool
	step  chan struct{}
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	auto := s.auto
	s.mu.Unlock()
	if auto {
		return ctx.Err()
	}
	select {
	case <-s.step:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *sleeper) setAuto(v bool) {
	s.mu.Lock()
	s.auto = v
	s.mu.Unlock()
}

func (s *sleeper) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// node is a fake node: its fact folder, state folder and key.
type node struct {
	run, state string
	key        ed25519.PrivateKey
}

func newNode(t *testing.T, ephemeral bool) *node {
	t.Helper()
	n := &node{run: t.TempDir(), state: t.TempDir()}
	t.Setenv("GRIDNODE_RUN", n.run)
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	n.key = ed25519.NewKeyFromSeed(seed)
	if err := os.MkdirAll(filepath.Join(n.run, "secret"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.run, "secret", "identity.seed"), seed, 0o600); err != nil {
		t.Fatal(err)
	}
	id := map[string]any{"public_key": api.PublicKey(n.key.Public().(ed25519.PublicKey)), "ephemeral": ephemeral, "state_dir": n.state}
	if ephemeral {
		id["state_dir"] = ""
	}
	must(t, fact.Write("identity", id))
	n.setHardware(t, 16<<30, "To be filled by O.E.M.")
	n.setNetwork(t, "10.0.2.15/24")
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (n *node) setHardware(t *testing.T, hru uint64, serial string) {
	t.Helper()
	must(t, fact.Write("hardware", map[string]any{
		"cru": 2, "mru": 1 << 30, "sru": 8 << 30, "hru": hru, "virtualized": true,
		"dmi":  map[string]string{"serial": serial},
		"nics": []map[string]any{{"name": "eth0", "mac": "52:54:00:12:34:56", "physical": true}},
	}))
}

func (n *node) setNetwork(t *testing.T, addrs ...string) {
	t.Helper()
	must(t, fact.Write("network", map[string]any{"iface": "eth0", "mac": "52:54:00:12:34:56", "addresses": addrs}))
}

// farm creates a farmer and a farm on the registrar at url.
func farm(t *testing.T, url string) uint64 {
	t.Helper()
	c, err := client.New(url, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)), client.Options{})
	must(t, err)
	_, err = c.EnsureAccount(context.Background())
	must(t, err)
	id, err := c.CreateFarm(context.Background(), api.CreateFarm{FarmName: "testfarm", StellarAddress: stellar})
	must(t, err)
	return id
}

type run struct {
	cancel context.CancelFunc
	done   chan error
	logs   *testutil.SyncBuffer
}

func start(t *testing.T, url string, farm uint64, s *sleeper) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, done: make(chan error, 1), logs: &testutil.SyncBuffer{}}
	cfg := config.Default()
	cfg.Registrar, cfg.Farm, cfg.Uptime = url, farm, config.Duration(10*time.Second)
	m := &module{
		cfg:        cfg,
		log:        slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		sleep:      s.sleep,
		rand:       func() float64 { return 0.999 },
		uptime:     func() (time.Duration, error) { return 123 * time.Second, nil },
		secureBoot: func() bool { return false },
		httpClient: &http.Client{Timeout: 5 * time.Second},
	}
	go func() { r.done <- m.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("module did not stop after cancel")
		}
		if t.Failed() {
			t.Logf("module log:\n%s", r.logs.String())
		}
	})
	return r
}

// waitFact waits until the registrar fact satisfies ok.
func waitFact(t *testing.T, what string, ok func(fact.Registrar) bool) fact.Registrar {
	t.Helper()
	var f fact.Registrar
	testutil.Eventually(t, 15*time.Second, func() bool { return fact.Read(Name, &f) == nil && ok(f) },
		"the registrar fact to be %s; last: %+v", what, &f)
	return f
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, ok, "%s", what)
}

func TestRegistersAndPatchesOnChange(t *testing.T) {
	n := newNode(t, false)
	reg := regtest.New()
	srv := reg.Start()
	defer srv.Close()
	farmID := farm(t, srv.URL)
	s := &sleeper{step: make(chan struct{})}
	start(t, srv.URL, farmID, s)

	f := waitFact(t, "registered", func(f fact.Registrar) bool { return f.State == fact.RegRegistered && f.UptimeSent == 1 })
	if f.TwinID == 0 || f.NodeID == 0 || f.URL != srv.URL || f.FarmID != farmID || f.LastUptime == nil || f.LastError != "" {
		t.Fatalf("fact %+v", f)
	}
	got, ok := reg.Node(f.NodeID)
	if !ok {
		t.Fatalf("node %d not on the registrar", f.NodeID)
	}
	pub := n.key.Public().(ed25519.PublicKey)
	want := api.Node{FarmID: farmID, TwinID: f.TwinID, Resources: api.Resources{CRU: 2, MRU: 1 << 30, SRU: 8 << 30, HRU: 16 << 30},
		Virtualized: true, SerialNumber: SerialNumber("", pub)}
	if got.FarmID != want.FarmID || got.Resources != want.Resources || !got.Virtualized || got.SerialNumber != want.SerialNumber ||
		!strings.HasPrefix(got.SerialNumber, "gn-") || got.Location.City != "unknown" {
		t.Fatalf("registered node %+v, want %+v", got, want)
	}
	if len(got.Interfaces) != 1 || got.Interfaces[0].Mac != "52:54:00:12:34:56" || len(got.Interfaces[0].IPs) != 1 || got.Interfaces[0].IPs[0] != "10.0.2.15" {
		t.Fatalf("interfaces %+v", got.Interfaces)
	}
	if up := reg.Uptimes(f.NodeID); len(up) != 1 || up[0].Uptime != 123 {
		t.Fatalf("uptimes %+v", up)
	}
	// The registration is kept beside the identity.
	var saved Registration
	b, err := os.ReadFile(filepath.Join(n.state, RegistrationFile))
	must(t, err)
	must(t, json.Unmarshal(b, &saved))
	if saved != (Registration{TwinID: f.TwinID, NodeID: f.NodeID, Registrar: srv.URL, FarmID: farmID}) {
		t.Fatalf("saved registration %+v", saved)
	}
	// The uptime waits are the configured interval.
	waitFor(t, "waiting for the next round", func() bool { return len(s.recorded()) == 1 })
	if w := s.recorded(); len(w) != 1 || w[0] != 10*time.Second {
		t.Fatalf("waits %v, want [10s]", w)
	}

	// Nothing changed: the next round only reports uptime.
	s.step <- struct{}{}
	waitFact(t, "sent a second uptime", func(f fact.Registrar) bool { return f.UptimeSent == 2 })
	if c := reg.Calls("PATCH /nodes/{id}"); c != 0 {
		t.Fatalf("%d PATCHes without a change", c)
	}

	// A new disk and a new address: one PATCH.
	n.setHardware(t, 32<<30, "To be filled by O.E.M.")
	n.setNetwork(t, "10.0.2.16/24", "fec0::2/64")
	s.step <- struct{}{}
	waitFact(t, "sent a third uptime", func(f fact.Registrar) bool { return f.UptimeSent == 3 })
	if c := reg.Calls("PATCH /nodes/{id}"); c != 1 {
		t.Fatalf("%d PATCHes after one change, want 1", c)
	}
	got, _ = reg.Node(f.NodeID)
	if got.Resources.HRU != 32<<30 || len(got.Interfaces[0].IPs) != 2 {
		t.Fatalf("after change: %+v", got)
	}
	if reg.NodeCount() != 1 || reg.Calls("POST /nodes") != 1 {
		t.Fatalf("%d nodes, %d creations", reg.NodeCount(), reg.Calls("POST /nodes"))
	}
}

// A node that rebooted finds its node again, and one whose record on the
// registrar differs from what it reports fixes it.
func TestRebootKeepsNode(t *testing.T) {
	newNode(t, false)
	reg := regtest.New()
	reg.SlashIPs = true // as the reference answers
	srv := reg.Start()
	defer srv.Close()
	farmID := farm(t, srv.URL)
	s := &sleeper{step: make(chan struct{})}
	r := start(t, srv.URL, farmID, s)
	f1 := waitFact(t, "registered", func(f fact.Registrar) bool { return f.State == fact.RegRegistered })
	r.cancel()
	<-r.done
	r.done <- nil // for the cleanup
	must(t, os.Remove(fact.Path(Name)))

	start(t, srv.URL, farmID, s)
	f2 := waitFact(t, "registered again", func(f fact.Registrar) bool { return f.State == fact.RegRegistered })
	if f1.TwinID != f2.TwinID || f1.NodeID != f2.NodeID {
		t.Fatalf("after reboot twin/node %d/%d, before %d/%d", f2.TwinID, f2.NodeID, f1.TwinID, f1.NodeID)
	}
	if reg.NodeCount() != 1 || reg.AccountCount() != 2 || reg.Calls("PATCH /nodes/{id}") != 0 {
		t.Fatalf("nodes %d accounts %d patches %d", reg.NodeCount(), reg.AccountCount(), reg.Calls("PATCH /nodes/{id}"))
	}
}

func TestKeepsReportingAfterErrors(t *testing.T) {
	newNode(t, true)
	reg := regtest.New()
	var mu sync.Mutex
	failures := 3
	reg.Fail = func(r *http.Request) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/uptime") && failures > 0 {
			failures--
			return http.StatusServiceUnavailable, "database is down"
		}
		return 0, ""
	}
	srv := reg.Start()
	defer srv.Close()
	farmID := farm(t, srv.URL)
	s := &sleeper{auto: true}
	start(t, srv.URL, farmID, s)

	f := waitFact(t, "recovered", func(f fact.Registrar) bool { return f.UptimeSent >= 1 })
	s.setAuto(false) // stop it; the next sleep blocks
	if f.UptimeFailed != 3 || f.State != fact.RegRegistered || f.LastError != "" {
		t.Fatalf("fact %+v, want 3 failed uptime reports then registered", f)
	}
	// The waits after each failure grow and stay within the bounds; the
	// one after the success is the uptime interval.
	waitFor(t, "waiting after the success", func() bool { return len(s.recorded()) >= 4 })
	w := s.recorded()
	if len(w) < 4 {
		t.Fatalf("waits %v", w)
	}
	for i := range 3 {
		if w[i] < BackoffMin || w[i] > BackoffBase<<i {
			t.Errorf("wait %d after a failure: %v, want within [%v, %v]", i, w[i], BackoffMin, BackoffBase<<i)
		}
	}
	if w[3] != 10*time.Second {
		t.Errorf("wait after the success %v, want the 10s interval", w[3])
	}
	// Ephemeral identity: nothing saved.
	if _, err := os.Stat(filepath.Join(os.Getenv("GRIDNODE_RUN"), RegistrationFile)); err == nil {
		t.Error("registration saved for an ephemeral identity")
	}
}

func TestRegistrarDownThenUp(t *testing.T) {
	newNode(t, false)
	// Find a free loopback port, and leave it closed for now.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	l.Close()
	url := "http://" + addr
	s := &sleeper{auto: true}
	r := start(t, url, 1, s)

	f := waitFact(t, "in error", func(f fact.Registrar) bool { return f.State == fact.RegError && len(s.recorded()) >= 3 })
	wantErr := "registrar " + url + " unreachable: connection refused"
	if !strings.HasPrefix(f.LastError, wantErr) {
		t.Fatalf("last_error %q, want it to start with %q", f.LastError, wantErr)
	}
	waitFor(t, "logging the retry", func() bool {
		return strings.Contains(r.logs.String(), "connection refused (is the registrar running?); retrying in")
	})

	// The registrar comes up.
	reg := regtest.New()
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(reg.Handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	farm(t, srv.URL)
	f = waitFact(t, "registered", func(f fact.Registrar) bool { return f.State == fact.RegRegistered && f.UptimeSent >= 1 })
	s.setAuto(false)
	if f.LastError != "" || reg.NodeCount() != 1 {
		t.Fatalf("fact %+v, %d nodes", f, reg.NodeCount())
	}
	for _, d := range s.recorded() {
		if d > BackoffCap {
			t.Fatalf("a wait of %v is above the cap", d)
		}
	}
}

// The module publishes its fact at once, before it has what it needs.
func TestPublishesAtOnce(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GRIDNODE_RUN", dir)
	s := &sleeper{step: make(chan struct{})}
	start(t, "http://127.0.0.1:1", 5, s)
	f := waitFact(t, "starting", func(f fact.Registrar) bool { return f.State == fact.RegStarting })
	if f.FarmID != 5 || f.URL != "http://127.0.0.1:1" {
		t.Fatalf("fact %+v", f)
	}
}

func TestConfigProblem(t *testing.T) {
	t.Setenv("GRIDNODE_RUN", t.TempDir())
	start(t, "", 5, &sleeper{step: make(chan struct{})})
	f := waitFact(t, "in error", func(f fact.Registrar) bool { return f.State == fact.RegError })
	if !strings.Contains(f.LastError, "gridnode.registrar=") {
		t.Fatalf("last_error %q", f.LastError)
	}
}

func TestBackoff(t *testing.T) {
	top := func() float64 { return 0.99999 }
	var prev time.Duration
	for a := 1; a <= 30; a++ {
		d := Backoff(a, top)
		if d > BackoffCap || d < prev {
			t.Fatalf("attempt %d: %v (previous %v)", a, d, prev)
		}
		prev = d
	}
	if prev < BackoffCap-time.Second {
		t.Fatalf("the backoff never reaches the cap: %v", prev)
	}
	if d := Backoff(1, top); d > BackoffBase {
		t.Fatalf("first wait %v above %v", d, BackoffBase)
	}
	if d := Backoff(7, func() float64 { return 0 }); d != BackoffMin {
		t.Fatalf("zero jitter gives %v, want %v", d, BackoffMin)
	}
	if d := Backoff(5, func() float64 { return 0.5 }); d != 16*time.Second {
		t.Fatalf("attempt 5 at half: %v, want 16s", d)
	}
}

func TestSerialNumber(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	derived := SerialNumber("", pub)
	if !strings.HasPrefix(derived, "gn-") || len(derived) != 3+16 {
		t.Fatalf("derived serial %q", derived)
	}
	for _, p := range []string{"To be filled by O.E.M.", "Not Specified", "0", "  ", "Default string", "000000", "FFFFFFFF"} {
		if got := SerialNumber(p, pub); got != derived {
			t.Errorf("placeholder %q gives %q", p, got)
		}
	}
	if got := SerialNumber(" PF2ABCDE ", pub); got != "PF2ABCDE" {
		t.Errorf("real serial gives %q", got)
	}
}

func TestParseLocation(t *testing.T) {
	if l := ParseLocation("BE,Ghent,51.05,3.72"); l != (api.Location{Country: "BE", City: "Ghent", Latitude: "51.05", Longitude: "3.72"}) {
		t.Errorf("%+v", l)
	}
	if l := ParseLocation(""); l != (api.Location{Country: "unknown", City: "unknown", Latitude: "unknown", Longitude: "unknown"}) {
		t.Errorf("%+v", l)
	}
	if l := ParseLocation("BE"); l.Country != "BE" || l.City != "unknown" {
		t.Errorf("%+v", l)
	}
}

func TestDescribe(t *testing.T) {
	err := stage("creating the node", &client.Error{Method: "POST", Path: "/nodes", Status: 404, Message: "farm not found"})
	if got := describe("http://r", err); got != "registrar http://r answered 404 (farm not found) when creating the node; is gridnode.farm right?" {
		t.Errorf("%q", got)
	}
	if got := describe("http://r", errors.New("reading the hardware fact: boom")); got != "reading the hardware fact: boom" {
		t.Errorf("%q", got)
	}
}

// A registrar whose error text carries escape sequences and a forged
// status line: the fact (which the console prints) has them as inert
// escapes, on one line.
func TestHostileErrorTextIsInert(t *testing.T) {
	newNode(t, true)
	reg := regtest.New()
	reg.Fail = func(r *http.Request) (int, string) {
		if strings.HasSuffix(r.URL.Path, "/uptime") {
			return http.StatusServiceUnavailable, "down\x1b[2J\x1b]0;owned\x07\nstatus: registrar=registered\r\u009b31m"
		}
		return 0, ""
	}
	srv := reg.Start()
	defer srv.Close()
	farmID := farm(t, srv.URL)
	start(t, srv.URL, farmID, &sleeper{step: make(chan struct{})})
	f := waitFact(t, "in error", func(f fact.Registrar) bool { return f.State == fact.RegError && f.LastError != "" })
	if strings.ContainsFunc(f.LastError, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
		t.Fatalf("last_error keeps control characters: %q", f.LastError)
	}
	if !strings.Contains(f.LastError, `down\x1b[2J\x1b]0;owned\x07\x0astatus: registrar=registered\x0d\x9b31m`) {
		t.Fatalf("last_error %q does not show the registrar's text as escapes", f.LastError)
	}
}

// The node warns once per boot (not again when the module restarts) about
// a registrar reached over plain HTTP on another machine, the public dev
// and test presets among them; not about HTTPS or the loopback.
func TestPlainHTTPWarning(t *testing.T) {
	for _, c := range []struct {
		registrar string
		warn      bool
	}{
		{"dev", true}, {"test", true}, {"http://10.0.2.2:8080", true}, {"http://[fd00::1]:8080", true}, {"http://registrar.farm.lan", true},
		{"qa", false}, {"main", false}, {"https://10.0.2.2:8443", false},
		{"http://127.0.0.1:8080", false}, {"http://localhost:8080", false}, {"http://[::1]:8080", false},
	} {
		t.Setenv("GRIDNODE_RUN", t.TempDir()) // a new boot
		url := config.Node{Registrar: c.registrar}.RegistrarURL()
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		if got := warnPlainHTTP(url, log); got != c.warn {
			t.Errorf("%s (%s): warned %v, want %v", c.registrar, url, got, c.warn)
		}
		if warnPlainHTTP(url, log) {
			t.Errorf("%s: warned twice in one boot", c.registrar)
		}
		if c.warn && (strings.Count(logs.String(), "plain HTTP") != 1 || !strings.Contains(logs.String(), url)) {
			t.Errorf("%s: log %q, want one warning naming %s", c.registrar, logs.String(), url)
		}
	}
}

// Someone else changes the node's record on the registrar (here with the
// node's key; an operator editing the store is the same to the node): at
// its next read-back the node says so and sets the record back.
func TestRecordChangedElsewhereIsSetBack(t *testing.T) {
	n := newNode(t, false)
	old := recheckEvery
	recheckEvery = 20 * time.Second // every second uptime round (10 s)
	defer func() { recheckEvery = old }()
	ctx := context.Background()
	hs := realRegistrar(t, false)
	farmID := farm(t, hs.URL)
	farmer, err := client.New(hs.URL, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)), client.Options{})
	must(t, err)
	_, err = farmer.EnsureAccount(ctx)
	must(t, err)
	other, err := farmer.CreateFarm(ctx, api.CreateFarm{FarmName: "otherfarm", StellarAddress: stellar})
	must(t, err)

	s := &sleeper{step: make(chan struct{})}
	r := start(t, hs.URL, farmID, s)
	f := waitFact(t, "registered", func(f fact.Registrar) bool { return f.State == fact.RegRegistered && f.UptimeSent == 1 })

	// Someone moves the node to another farm and changes its capacity.
	c, err := client.New(hs.URL, n.key, client.Options{})
	must(t, err)
	_, err = c.EnsureAccount(ctx)
	must(t, err)
	rec, err := c.Node(ctx, f.NodeID)
	must(t, err)
	changed := fromNode(rec)
	changed.FarmID, changed.Resources.HRU = other, 1<<40
	must(t, c.UpdateNode(ctx, f.NodeID, changed))

	// The next round is not due for a read-back; the one after is.
	s.step <- struct{}{}
	waitFact(t, "a second uptime", func(f fact.Registrar) bool { return f.UptimeSent == 2 })
	if strings.Contains(r.logs.String(), "changed by someone else") {
		t.Fatal("read back before recheckEvery")
	}
	s.step <- struct{}{}
	waitFact(t, "a third uptime", func(f fact.Registrar) bool { return f.UptimeSent == 3 })
	got, err := c.Node(ctx, f.NodeID)
	must(t, err)
	if got.FarmID != farmID || got.Resources.HRU != 16<<30 {
		t.Fatalf("after the read-back the record says farm %d hru %d; want farm %d hru %d set back", got.FarmID, got.Resources.HRU, farmID, 16<<30)
	}
	want := fmt.Sprintf("node %d's record on the registrar was changed by someone else (farm %d → %d, capacity", f.NodeID, farmID, other)
	if !strings.Contains(r.logs.String(), want) {
		t.Fatalf("the log does not say %q:\n%s", want, r.logs.String())
	}
}
