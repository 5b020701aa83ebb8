package console

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gridnode/gridnode/internal/testutil"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

const seed = "SECRET-SEED-0123456789abcdef0123"

// fixture writes a fact folder like a registered node's, with a secret
// folder and a symlink that points into it.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	facts := map[string]string{
		"identity":  `{"public_key": "ZmFrZS1wdWJsaWMta2V5LWZvci10ZXN0cy0wMDAwMDA=", "ephemeral": false, "state_dir": "/var/cache/gridnode"}`,
		"registrar": `{"url": "http://10.0.2.2:8080", "farm_id": 1, "state": "registered", "twin_id": 1, "node_id": 1, "last_error": "uptime report: registrar answered 503 Service Unavailable", "uptime_sent": 5, "uptime_failed": 2}`,
		"network":   `{"iface": "eth0", "mac": "52:54:00:12:34:56", "mode": "dhcp", "addresses": ["10.0.2.15/24", "fec0::5054:ff:fe12:3456/64"], "gateway": "10.0.2.2", "dns": ["10.0.2.3"], "clock": {"source": "registrar"}}`,
		"hardware":  `{"cru": 2, "mru": 1073741824, "sru": 8589934592, "hru": 17179869184, "disks": []}`,
		"storage":   `{"cache": {"disk": "/dev/sda", "partition": "/dev/sda1", "mount": "/var/cache", "label": "gridnode-cache"}, "disks": []}`,
		"modules":   `{"hardware": {"state": "stopped", "restarts": 0, "since": "2026-01-01T00:00:00Z"}, "registrar": {"state": "ready", "pid": 42, "restarts": 3, "last_exit": "exit status 1"}}`,
		"console":   `{"status_addr": "[::]:9100"}`,
	}
	for n, v := range facts {
		if err := os.WriteFile(filepath.Join(dir, n+".json"), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "secret"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret", "identity.seed"), []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret", "x.json"), []byte(`{"seed":"`+seed+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "secret", "x.json"), filepath.Join(dir, "leak.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "log", "network.log"), []byte("DHCP lease obtained\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := filepath.Join(t.TempDir(), "uptime")
	os.WriteFile(up, []byte("3725.12 100.00\n"), 0o644)
	old := procUptime
	procUptime = up
	t.Cleanup(func() { procUptime = old })
	return dir
}

func TestScreenFromFixture(t *testing.T) {
	s := load(fixture(t))
	lines := s.lines()
	screen := strings.Join(lines, "\n")
	t.Logf("screen:\n%s\nserial:\n%s", screen, strings.Join(s.serial(), "\n"))
	for _, want := range []string{
		"Node key   : ZmFrZS1wdWJsaWMta2V5LWZvci10ZXN0cy0wMDAwMDA=",
		"Farm       : 1          Twin: 1          Node: 1",
		"Registrar  : http://10.0.2.2:8080",
		"registered",
		"Last error : uptime report: registrar answered 503 Service Unavailable",
		"Uptime     : 5 reports sent, 2 failed",
		"Network    : eth0 52:54:00:12:34:56 (dhcp) gateway 10.0.2.2",
		"10.0.2.15/24",
		"fec0::5054:ff:fe12:3456/64",
		"Capacity   : 2 CPUs, 1.0 GiB memory, 8.0 GiB SSD, 16.0 GiB HDD",
		"Cache      : /var/cache on /dev/sda",
		"Status     : http://10.0.2.15:9100/status",
		"registrar    ready              3  exit status 1",
		"hardware     stopped            0",
		"up 1h2m5s",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line is %d columns wide (max 80): %q", n, l)
		}
	}
	serial := strings.Join(s.serial(), "\n")
	for _, want := range []string{
		"status: registrar=registered twin=1 node=1 farm=1 url=http://10.0.2.2:8080",
		"status: registrar error: uptime report: registrar answered 503 Service Unavailable",
		"status: network=eth0 mac=52:54:00:12:34:56 addr=10.0.2.15/24,fec0::5054:ff:fe12:3456/64 gw=10.0.2.2 clock=registrar",
		"status: capacity cru=2 mru=1.0GiB sru=8.0GiB hru=16.0GiB",
		"status: modules hardware=stopped registrar=ready(3 restarts)",
	} {
		if !strings.Contains(serial, want) {
			t.Errorf("serial block lacks %q:\n%s", want, serial)
		}
	}
	if strings.Contains(screen+serial, seed) {
		t.Error("the secret seed shows on the screen")
	}
}

func TestScreenSaysWhyNoNetwork(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "network-status.json"), []byte(`{"state": "searching", "error": "eth0: no carrier — is the cable plugged in?\nens3: no DHCP offer after 10s"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "identity.json"), []byte(`{"public_key": "k", "ephemeral": true}`), 0o644)
	s := load(dir)
	screen := strings.Join(s.lines(), "\n")
	for _, want := range []string{"Network    : NO ADDRESS", "eth0: no carrier — is the cable plugged in?", "ens3: no DHCP offer after 10s", "EPHEMERAL", "waiting for the hardware module", "waiting for network and identity"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	serial := strings.Join(s.serial(), "\n")
	if want := "status: network=none error: eth0: no carrier — is the cable plugged in?; ens3: no DHCP offer after 10s"; !strings.Contains(serial, want) {
		t.Errorf("serial block lacks %q:\n%s", want, serial)
	}
	if want := "status: registrar=waiting twin=0 node=0 farm=0"; !strings.Contains(serial, want) {
		t.Errorf("serial block lacks %q:\n%s", want, serial)
	}
}

// TestScreenHostileText: text that came from outside the node (a
// registrar's error, a DHCP server's words, firmware strings) reaches the
// screen and the serial block as inert escapes, one line each.
func TestScreenHostileText(t *testing.T) {
	dir := fixture(t)
	evil := `x\u001b[2J\u001b]0;owned\u0007\nstatus: registrar=registered twin=9\r\u009b31m\u202e` // JSON escapes
	os.WriteFile(filepath.Join(dir, "registrar.json"), []byte(`{"url": "http://10.0.2.2:8080", "farm_id": 1, "state": "error", "last_error": "`+evil+`"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "network.json"), []byte(`{"iface": "eth0\u001b[1A", "addresses": []}`), 0o644)
	os.WriteFile(filepath.Join(dir, "network-status.json"), []byte(`{"state": "searching", "error": "`+evil+`"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "hardware.json"), []byte(`{"cru": 1, "gpus": [{"vendor": "`+evil+`", "model": "m", "address": "0000:00:02.0"}]}`), 0o644)
	s := load(dir)
	for what, lines := range map[string][]string{"screen": s.lines(), "serial": s.serial()} {
		for _, l := range lines {
			if strings.ContainsFunc(l, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x202e }) {
				t.Errorf("%s line keeps control characters: %q", what, l)
			}
			if strings.Contains(l, "twin=9") && strings.HasPrefix(l, "status: registrar=registered") {
				t.Errorf("%s has a forged status line: %q", what, l)
			}
		}
	}
	if serial := strings.Join(s.serial(), "\n"); !strings.Contains(serial, `status: registrar error: x\x1b[2J\x1b]0;owned\x07\x0astatus: registrar=registered twin=9\x0d\x9b31m\u202e`) {
		t.Errorf("serial block does not show the registrar's text as escapes:\n%s", serial)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStatusNeverExposesSecrets(t *testing.T) {
	srv := httptest.NewServer(Handler(fixture(t)))
	defer srv.Close()
	code, body := get(t, srv.URL+"/status")
	if code != 200 {
		t.Fatalf("/status: %d %s", code, body)
	}
	var facts map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &facts); err != nil {
		t.Fatalf("/status is not JSON: %v", err)
	}
	for _, n := range []string{"identity", "registrar", "network", "hardware", "storage", "modules", "console"} {
		if _, ok := facts[n]; !ok {
			t.Errorf("/status lacks fact %s", n)
		}
	}
	var reg fact.Registrar
	if json.Unmarshal(facts["registrar"], &reg); reg.TwinID != 1 || reg.State != "registered" {
		t.Errorf("/status registrar = %+v", reg)
	}
	for n := range facts {
		if n == "secret" || n == "leak" || n == "x" {
			t.Errorf("/status exposes %q", n)
		}
	}
	if strings.Contains(body, seed) {
		t.Error("/status exposes the secret seed")
	}
	for _, p := range []string{"/log/..%2Fsecret%2Fidentity.seed", "/log/../secret/identity.seed", "/secret/identity.seed", "/log/identity.seed"} {
		if code, body := get(t, srv.URL+p); code == 200 || strings.Contains(body, seed) {
			t.Errorf("GET %s: %d %q", p, code, body)
		}
	}
	if code, body := get(t, srv.URL+"/log/network"); code != 200 || body != "DHCP lease obtained\n" {
		t.Errorf("/log/network: %d %q", code, body)
	}
	resp, err := http.Post(srv.URL+"/status", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %d, want 405", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	srv := httptest.NewServer(Handler(fixture(t)))
	defer srv.Close()
	code, body := get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`gridnode_capacity_bytes{kind="mru"} 1073741824`,
		`gridnode_capacity_bytes{kind="sru"} 8589934592`,
		`gridnode_capacity_bytes{kind="hru"} 17179869184`,
		"gridnode_cpus 2",
		`gridnode_module_restarts_total{module="registrar"} 3`,
		`gridnode_module_restarts_total{module="hardware"} 0`,
		`gridnode_module_ready{module="registrar"} 1`,
		`gridnode_module_ready{module="hardware"} 0`,
		`gridnode_uptime_reports_total{result="sent"} 5`,
		`gridnode_uptime_reports_total{result="failed"} 2`,
		"gridnode_registered 1",
		"gridnode_uptime_seconds 3725",
		"# TYPE gridnode_module_restarts_total counter",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestSerialRateLimit(t *testing.T) {
	var out bytes.Buffer
	old := stdout
	stdout = &out
	defer func() { stdout = old }()
	s := &screens{}
	s.pending = "status: a\n"
	if w := s.flushSerial(); w != 0 || out.String() != "status: a\n" {
		t.Fatalf("first block: wait %s, printed %q", w, out.String())
	}
	s.pending = "status: b\n"
	if w := s.flushSerial(); w <= 0 || w > serialEvery || strings.Contains(out.String(), "status: b") {
		t.Fatalf("second block within %s: wait %s, printed %q", serialEvery, w, out.String())
	}
	s.printedAt = time.Now().Add(-serialEvery)
	if w := s.flushSerial(); w != 0 || !strings.HasSuffix(out.String(), "status: b\n") {
		t.Fatalf("second block after %s: wait %s, printed %q", serialEvery, w, out.String())
	}
}

// TestRunRefreshesOnChange runs the module on a fact folder: it publishes
// its fact once listening, serves /status there, and redraws tty1 and the
// serial block when a fact changes.
func TestRunRefreshesOnChange(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GRIDNODE_RUN", dir)
	tty := filepath.Join(t.TempDir(), "tty1")
	os.WriteFile(tty, nil, 0o644)
	out := &testutil.SyncBuffer{}
	oldTTY, oldOut, oldEvery := ttyPath, stdout, serialEvery
	ttyPath, stdout, serialEvery = tty, out, 300*time.Millisecond
	defer func() { ttyPath, stdout, serialEvery = oldTTY, oldOut, oldEvery }()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := config.Default()
	cfg.Status = "127.0.0.1:0"
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	var f fact.Console
	testutil.Eventually(t, 5*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "console.json"))
		return err == nil && json.Unmarshal(b, &f) == nil && f.StatusAddr != ""
	}, "the console fact")
	if code, body := get(t, "http://"+f.StatusAddr+"/status"); code != 200 || !strings.Contains(body, `"console"`) {
		t.Errorf("/status at the published address: %d %s", code, body)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return strings.Contains(out.String(), "status: registrar=waiting")
	}, "the first serial block")

	os.WriteFile(filepath.Join(dir, ".registrar.json.tmp"), []byte(`{"url": "http://10.0.2.2:8080", "farm_id": 3, "state": "registered", "twin_id": 7, "node_id": 9}`), 0o644)
	os.Rename(filepath.Join(dir, ".registrar.json.tmp"), filepath.Join(dir, "registrar.json"))
	testutil.Eventually(t, 5*time.Second, func() bool {
		return strings.Contains(out.String(), "status: registrar=registered twin=7 node=9 farm=3 url=http://10.0.2.2:8080\n")
	}, "the serial block to show the registration")
	testutil.Eventually(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(tty)
		return strings.Contains(string(b), clearScreen) && strings.Contains(string(b), "Twin: 7")
	}, "tty1 to be redrawn with the registration")
}

// A device left without a driver and a GPU show on the screen and in the
// serial status block.
func TestScreenShowsUnclaimedDevicesAndGPUs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hardware.json"), []byte(`{"cru": 1, "mru": 1, "disks": [],
		"gpus": [{"address": "0000:01:00.0", "vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "model": "Rage 128 PF/PRO AGP 4x TMDS", "vendor_id": "1002", "device_id": "5046", "iommu_group": "7"}],
		"unclaimed": [{"address": "0000:00:04.0", "vendor_id": "1b36", "device_id": "0010", "vendor": "Red Hat, Inc.", "device": "QEMU NVM Express Controller", "modules": ["nvme"]}]}`), 0o644)
	s := load(dir)
	screen := strings.Join(s.lines(), "\n")
	for _, want := range []string{"NO DRIVER  : [1b36:0010] Red Hat, Inc. QEMU NVM Express Controller at", "GPU        : [1002:5046] Advanced Micro Devices, Inc. [AMD/ATI] Rage 128"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	serial := strings.Join(s.serial(), "\n")
	for _, want := range []string{"status: no driver for [1b36:0010] Red Hat, Inc. QEMU NVM Express Controller at 0000:00:04.0 (nvme)",
		"status: gpu [1002:5046] Advanced Micro Devices, Inc. [AMD/ATI] Rage 128 PF/PRO AGP 4x TMDS at 0000:01:00.0 iommu_group=7"} {
		if !strings.Contains(serial, want) {
			t.Errorf("serial block lacks %q:\n%s", want, serial)
		}
	}
}
