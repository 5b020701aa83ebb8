package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/client/regtest"
	"github.com/gridnode/gridnode/grid/registrar"
)

func farmRun(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// The farmer's workflow end to end: key, account, farm, a node registers,
// the farmer sees it and approves it.
func TestFarmWorkflow(t *testing.T) {
	srv := regtest.New().Start()
	defer srv.Close()
	testFarmWorkflow(t, srv.URL)
}

// The same against the project's registrar.
func TestFarmWorkflowRealRegistrar(t *testing.T) {
	st, err := registrar.OpenStore(context.Background(), filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := registrar.New(registrar.Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer func() { hs.Close(); srv.Close(); st.Close() }()
	testFarmWorkflow(t, hs.URL)
}

func testFarmWorkflow(t *testing.T, url string) {
	keyFile := filepath.Join(t.TempDir(), "farmer.key")
	flags := []string{"--registrar", url, "--key", keyFile}
	farmCmd := func(args ...string) string {
		t.Helper()
		out, errOut, code := farmRun(t, "", append(append([]string{"farm"}, args...), flags...)...)
		if code != 0 {
			t.Fatalf("gridnode farm %v: exit %d: %s", args, code, errOut)
		}
		return out
	}

	out := farmCmd("keygen")
	m := regexp.MustCompile(`\n  ((?:[a-z]+ ){23}[a-z]+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keygen shows no 24-word mnemonic:\n%s", out)
	}
	if _, errOut, code := farmRun(t, "", append([]string{"farm", "keygen"}, flags...)...); code == 0 || !strings.Contains(errOut, "exists already") {
		t.Fatalf("second keygen: %d %s", code, errOut)
	}
	// The mnemonic restores the same key.
	restored := filepath.Join(t.TempDir(), "restored.key")
	out2, errOut, code := farmRun(t, m[1]+"\n", "farm", "keygen", "--from-mnemonic", "--key", restored)
	if code != 0 {
		t.Fatalf("restore: %s", errOut)
	}
	pub := regexp.MustCompile(`public key: (\S+)`).FindStringSubmatch(out)[1]
	if !strings.Contains(out2, pub) {
		t.Fatalf("restored key differs: %s vs %s", out2, pub)
	}

	out = farmCmd("account")
	if !regexp.MustCompile(`^twin 1\n`).MatchString(out) {
		t.Fatalf("account: %q", out)
	}
	out = farmCmd("create", "--name", "myfarm", "--stellar", "GBZ6VHJ4KQ5Q7J4Y5G2N3X6TZ3V5W6Q7R2S3T4U5V6W7X8Y9Z2A3B4C5")
	if !strings.HasPrefix(out, `farm 1 "myfarm" created`) || !strings.Contains(out, "gridnode.farm=1 gridnode.registrar="+url) {
		t.Fatalf("create: %q", out)
	}
	if _, errOut, code := farmRun(t, "", append([]string{"farm", "create", "--name", "myfarm", "--stellar", "GBZ6VHJ4KQ5Q7J4Y5G2N3X6TZ3V5W6Q7R2S3T4U5V6W7X8Y9Z2A3B4C5"}, flags...)...); code == 0 || !strings.Contains(errOut, "taken") {
		t.Fatalf("duplicate farm: %d %s", code, errOut)
	}
	if _, errOut, code := farmRun(t, "", append([]string{"farm", "create", "--name", "bad name", "--stellar", "G"}, flags...)...); code == 0 || !strings.Contains(errOut, "letters and digits") {
		t.Fatalf("bad farm name: %d %s", code, errOut)
	}

	// A node registers and reports.
	ctx := context.Background()
	nc, _ := client.New(url, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32)), client.Options{})
	if _, err := nc.EnsureAccount(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := nc.CreateNode(ctx, api.CreateNode{FarmID: 1, Resources: api.Resources{CRU: 4, MRU: 8 << 30, SRU: 512 << 30, HRU: 4 << 40},
		Location:     api.Location{Country: "unknown", City: "unknown", Latitude: "unknown", Longitude: "unknown"},
		Interfaces:   []api.Interface{{Name: "eth0", Mac: "52:54:00:00:00:01", IPs: api.IPs{"10.0.2.15"}}},
		SerialNumber: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.ReportUptime(ctx, id, time.Minute); err != nil {
		t.Fatal(err)
	}

	out = farmCmd("nodes")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NODE") {
		t.Fatalf("nodes table:\n%s", out)
	}
	f := strings.Fields(lines[1])
	want := []string{"1", "2", "1", "yes", "no", "4", "8", "GiB", "512", "GiB", "4", "TiB", "S1"}
	if len(f) < len(want) || strings.Join(f[:len(want)], " ") != strings.Join(want, " ") || !strings.HasSuffix(lines[1], "s ago") {
		t.Fatalf("node row %q, want it to start with %v", lines[1], want)
	}
	out = farmCmd("approve", "1")
	if out != "node 1 approved\n" {
		t.Fatalf("approve: %q", out)
	}
	out = farmCmd("nodes", "--farm", "1")
	if f := strings.Fields(strings.Split(out, "\n")[1]); f[4] != "yes" {
		t.Fatalf("after approve:\n%s", out)
	}
}
