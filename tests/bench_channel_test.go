//go:build bench

package tests

// Channel polls at grid scale (issue 13): `gridnode registrar` as its own
// process on loopback (SQLite) serving a channel document to the polls of
// a million nodes — each node polls once, with the ETag of the document it
// has (the steady state: 304 Not Modified) — then the same registrar
// serving the full document (what every node fetches once after a new
// document is published) and GET /zos/version (the reference API's one
// version document, read from the store on each request) in the same run,
// the same number of connections, from a load generator in this test's
// process on the same 2 cores.
//
//	go test -tags bench -run TestBenchChannels -v -timeout 60m ./tests/
//
// Environment: GRIDNODE_BENCH_POLLS (polls of the 304 phase, default
// 1000000: one per node), GRIDNODE_BENCH_POLL_CONC (connections, default 64).

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/internal/round"
	"github.com/gridnode/gridnode/qemu"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// Target of issue 13: polls a second on these 2 cores.
const chanTargetPolls = 5000.0

// gridnodeBinary builds ./cmd/gridnode into the test's temporary folder.
func gridnodeBinary(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "gridnode")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gridnode")
	build.Dir = root
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gridnode: %v\n%s", err, out)
	}
	return bin
}

// chanPhase is what one phase of load measured.
type chanPhase struct {
	name           string
	n, errs        int64
	wall           time.Duration
	p50, p99, max  time.Duration
	cpu            regCPU
	status         string // the answers' status
	bytesPerAnswer int
}

// chanLoad sends total requests over conc connections, each worker calling
// do in a loop, and measures them.
func chanLoad(t *testing.T, pid int, name string, conc, total int, do func(ctx context.Context, c *client.Client) error, c *client.Client) chanPhase {
	ctx := context.Background()
	var next, errs atomic.Int64
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	before := regCPUNow(pid)
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				s := time.Now()
				if err := do(ctx, c); err != nil {
					if errs.Add(1) == 1 {
						t.Logf("%s: %v", name, err)
					}
				}
				lat[w] = append(lat[w], time.Since(s))
			}
		}()
	}
	wg.Wait()
	p := chanPhase{name: name, n: int64(total), errs: errs.Load(), wall: time.Since(start), cpu: before.to(regCPUNow(pid))}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	p.p50, p.p99, p.max = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	t.Logf("%s: %d in %.1fs, %.0f/s, p50 %v p99 %v, %d errors, registrar CPU %.1fs, load %s", name, p.n, p.wall.Seconds(),
		float64(p.n)/p.wall.Seconds(), p.p50, p.p99, p.errs, p.cpu.registrar, p.cpu.load)
	return p
}

func TestBenchChannels(t *testing.T) {
	polls := regEnvInt(t, "GRIDNODE_BENCH_POLLS", 1_000_000)
	conc := regEnvInt(t, "GRIDNODE_BENCH_POLL_CONC", 64)
	bin := gridnodeBinary(t)
	relKey, _ := doc.GenerateKey()
	pub := doc.PublicKey(relKey.Public().(ed25519.PublicKey))
	// A fresh database's first account is twin 1: the admin.
	p := startRegistrar(t, bin, filepath.Join(t.TempDir(), "registrar.db"), "--admin-twin", "1", "--release-key", pub.String())
	defer p.kill()
	url := "http://" + p.addr
	pid := p.cmd.Process.Pid
	ctx := context.Background()

	tr := &http.Transport{Proxy: nil, MaxIdleConns: conc, MaxIdleConnsPerHost: conc, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	_, adminKey, _ := ed25519.GenerateKey(nil)
	admin, err := client.New(url, adminKey, client.Options{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := admin.EnsureAccount(ctx); err != nil || a.TwinID != 1 {
		t.Fatalf("admin account: twin %d, %v (want twin 1 on a fresh database)", a.TwinID, err)
	}
	// A document as a release engineer publishes it: four waves, canary farms.
	d, err := doc.SignChannel(doc.Channel{Channel: "stable", Sequence: 1, Expires: time.Now().Add(30 * 24 * time.Hour), Version: "1.2.0",
		Release:     "registry.example.com/gridnode/release@sha256:" + strings.Repeat("5e", 32),
		Waves:       doc.Schedule(time.Now(), []uint32{10_000, 100_000, 500_000, 1_000_000}, 24*time.Hour),
		CanaryFarms: []uint64{1, 7}}, relKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.PutChannel(ctx, "stable", d); err != nil {
		t.Fatal(err)
	}
	ver := base64.StdEncoding.EncodeToString([]byte(`{"version":"v1.2.0","safe_to_upgrade":true}`))
	req, _ := http.NewRequest("PUT", url+api.Prefix+"/zos/version", strings.NewReader(`{"version":"`+ver+`"}`))
	req.Header.Set(api.HeaderAuth, api.AuthHeader(adminKey, 1, time.Now()))
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT /zos/version: %v %v", resp, err)
	}
	nodes, _ := client.New(url, nil, client.Options{HTTPClient: hc, UserAgent: "gridnode"})
	first, err := nodes.Channel(ctx, "stable", "")
	if err != nil {
		t.Fatal(err)
	}
	body := len(first.State.Document) + 30

	var phases []chanPhase
	ph := chanLoad(t, pid, "channel poll with the node's ETag", conc, polls, func(ctx context.Context, c *client.Client) error {
		a, err := c.Channel(ctx, "stable", first.ETag)
		if err == nil && !a.NotModified {
			err = fmt.Errorf("answered 200, want 304")
		}
		return err
	}, nodes)
	ph.status, ph.bytesPerAnswer = "304", 0
	phases = append(phases, ph)
	ph = chanLoad(t, pid, "channel poll without an ETag (the full document)", conc, polls/5, func(ctx context.Context, c *client.Client) error {
		a, err := c.Channel(ctx, "stable", "")
		if err == nil && a.NotModified {
			err = fmt.Errorf("answered 304 to a poll without an ETag")
		}
		return err
	}, nodes)
	ph.status, ph.bytesPerAnswer = "200", body
	phases = append(phases, ph)
	ph = chanLoad(t, pid, "GET /zos/version (read from the store)", conc, polls/5, func(ctx context.Context, c *client.Client) error {
		_, err := c.ZOSVersion(ctx)
		return err
	}, nodes)
	ph.status = "200"
	phases = append(phases, ph)
	rss, hwm, _ := regProcMem(pid)

	t.Setenv(qemu.AccelEnv, "tcg")
	m := strings.Replace(machine(), ", QEMU accel tcg", "", 1)
	var b strings.Builder
	fmt.Fprintf(&b, "### Channel polls (issue 13)\n\n")
	fmt.Fprintf(&b, "Command: `go test -tags bench -run TestBenchChannels -v -timeout 60m ./tests/` (in `make bench`)\nMachine: %s\n\n", m)
	fmt.Fprintf(&b, "`gridnode registrar` (SQLite) as its own process; a load generator in the test's process (grid/client, %d keep-alive connections, each sending its next request as soon as it has an answer) on the same cores. The poll phase is one poll for each node of a %s-node grid, with the ETag of the document it has: the steady state of a grid polling its channel. Then the full document (what each node fetches once after a new one is published) and the reference API's GET /zos/version, in the same run with the same connections.\n\n", conc, commas(polls))
	b.WriteString("| request | answer | requests | wall | per second | p50 ms | p99 ms | max ms | registrar CPU (per request) | load average | target |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, p := range phases {
		target := ""
		if i == 0 {
			target = fmt.Sprintf("≥ %s/s: %s", commas(int(chanTargetPolls)), regMet(float64(p.n)/p.wall.Seconds() >= chanTargetPolls))
		}
		answer := p.status
		if p.bytesPerAnswer > 0 {
			answer += fmt.Sprintf(", %d bytes", p.bytesPerAnswer)
		}
		errs := ""
		if p.errs > 0 {
			errs = fmt.Sprintf(" (%d errors)", p.errs)
		}
		fmt.Fprintf(&b, "| %s | %s | %s%s | %.1f s | **%s** | %.2f | %.2f | %.2f | %.1f s (%.0f µs) | %s | %s |\n", p.name, answer, commas(int(p.n)), errs,
			p.wall.Seconds(), commas(int(float64(p.n)/p.wall.Seconds())), round.Millis(p.p50), round.Millis(p.p99), round.Millis(p.max),
			p.cpu.registrar, p.cpu.registrar/float64(p.n)*1e6, p.cpu.load, target)
	}
	fmt.Fprintf(&b, "\nThe registrar's resident memory at the end: %s (peak %s). A poll is answered from memory (the document's answer and ETag are made once per change, and the store is read again at most every 2 s, `--channel-ttl`); /zos/version reads the store on each request. The registrar's CPU per request is the figure least moved by the machine's load; the load generator takes most of the rest. The machine is shared with other work (other engineers' builds and QEMU guests): the load average beside each phase says how busy it was; the figures are this run's, not the registrar's best.\n", mib(rss), mib(hwm))
	section(t, "channels", b.String())
	for _, p := range phases {
		if p.errs > 0 {
			t.Errorf("%s: %d errors", p.name, p.errs)
		}
	}
}

// commas writes n with thousands separators.
func commas(n int) string {
	s := fmt.Sprint(n)
	var out []string
	for len(s) > 3 {
		out = append([]string{s[len(s)-3:]}, out...)
		s = s[:len(s)-3]
	}
	return strings.Join(append([]string{s}, out...), ",")
}
