//go:build bench

package tests

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/qemu"
)

// TestBenchNode measures a node joining the grid (issue 3): the memory of all
// gridnode processes (PID 1 and its modules) once the node is ready and
// registered, read from the node's own /metrics, and the time from
// `gridnode: ready` to the registrar creating the node and accepting its
// first uptime report. Each run boots a fresh node (new disk, new key)
// against a registrar that is up from the start.
func TestBenchNode(t *testing.T) {
	const runs = 3
	r := image(t, "node")
	g := newRig(t)
	g.serveNodes()

	var toReady, startToCreate, toCreate, toUptime []time.Duration
	var rss, pss []int64
	var last []procMem
	for i := 0; i < runs; i++ {
		before := g.rec.nodeCount()
		start := time.Now()
		vm := boot(t, qemu.Options{
			Boot:     kernelBoot(r, g.cmdline(nodeUptime)...),
			CPUs:     2,
			Memory:   1024,
			Disks:    []qemu.Disk{{Size: 1 << 30, Serial: "bench" + strconv.Itoa(i)}},
			Forwards: []qemu.Forward{{Guest: 9100}},
		})
		expect(t, vm, `^gridnode: ready$`, bootTimeout)
		readyAt := time.Now()
		c := g.rec.waitCreated(t, before+1, readyAt.Add(5*time.Minute))
		ups := g.rec.waitUptimes(t, c.ID, 1, readyAt.Add(5*time.Minute))
		toReady = append(toReady, readyAt.Sub(start))
		startToCreate = append(startToCreate, c.At.Sub(start))
		toCreate = append(toCreate, c.At.Sub(readyAt))
		toUptime = append(toUptime, ups[0].At.Sub(readyAt))

		// Memory once ready and registered.
		procs, totRSS, totPSS := nodeMetrics(t, "http://"+vm.HostAddr(9100)+"/metrics")
		rss, pss, last = append(rss, totRSS), append(pss, totPSS), procs
		vm.Kill()
	}

	runsCreate, runsUptime := nodeSecs(toCreate), nodeSecs(toUptime) // in run order, before median sorts
	var rows strings.Builder
	for _, p := range last {
		fmt.Fprintf(&rows, "| %s | %s | %s |\n", p.name, mib(p.rss), mib(p.pss))
	}
	section(t, "node", fmt.Sprintf(`### Node memory and registration (issue 3)

Command: `+"`go test -tags bench -run TestBenchNode ./tests/`"+`
Machine: %s

| measure | result (median of %d) | target |
|---|---|---|
| memory of all gridnode processes, sum of Pss (what they take together) | %s | ≤ 64 MB (61.0 MiB) |
| memory of all gridnode processes, sum of VmRSS (shared pages counted in each) | %s | |
| QEMU start → `+"`gridnode: ready`"+` | %.1f s | |
| QEMU start → node created on the registrar | %.1f s | |
| `+"`gridnode: ready`"+` → node created on the registrar (negative: before ready) | %+.1f s | |
| `+"`gridnode: ready`"+` → first uptime report accepted | %+.1f s | |

Boots: -smp 2 -m 1024, one virtio NIC, one empty 1 GiB virtio disk, registrar up from the start; memory read from the node's /metrics (:9100) once registered. Runs: Pss %v; VmRSS %v; ready → created %v; ready → first uptime %v.

Per process, last run:

| process | VmRSS | Pss |
|---|---|---|
%s`, machine(), runs, mib(medianInt(pss)), mib(medianInt(rss)),
		median(toReady).Seconds(), median(startToCreate).Seconds(), median(toCreate).Seconds(), median(toUptime).Seconds(),
		mibs(pss), mibs(rss), runsCreate, runsUptime, rows.String()))
}

type procMem struct {
	name     string
	rss, pss int64
}

var procMetric = regexp.MustCompile(`^gridnode_process_(rss|pss)_bytes\{process="([^"]*)",pid="(\d+)"\} (\d+)$`)

// nodeMetrics reads the per-process and total memory from a node's /metrics.
func nodeMetrics(t *testing.T, url string) (procs []procMem, rss, pss int64) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	byPID := map[string]*procMem{}
	var pids []string
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if m := procMetric.FindStringSubmatch(line); m != nil {
			p := byPID[m[3]]
			if p == nil {
				p = &procMem{name: m[2]}
				byPID[m[3]] = p
				pids = append(pids, m[3])
			}
			n, _ := strconv.ParseInt(m[4], 10, 64)
			if m[1] == "rss" {
				p.rss = n
			} else {
				p.pss = n
			}
			continue
		}
		if v, ok := strings.CutPrefix(line, "gridnode_memory_rss_bytes "); ok {
			rss, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "gridnode_memory_pss_bytes "); ok {
			pss, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if rss == 0 || len(pids) == 0 {
		t.Fatalf("%s has no gridnode_memory_rss_bytes or per-process memory:\n%s", url, body)
	}
	sort.Slice(pids, func(i, j int) bool { a, _ := strconv.Atoi(pids[i]); b, _ := strconv.Atoi(pids[j]); return a < b })
	for _, p := range pids {
		procs = append(procs, *byPID[p])
	}
	return procs, rss, pss
}

func medianInt(v []int64) int64 {
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func mibs(v []int64) []string {
	var l []string
	for _, n := range v {
		l = append(l, mib(n))
	}
	return l
}

func nodeSecs(d []time.Duration) []string {
	var l []string
	for _, x := range d {
		l = append(l, fmt.Sprintf("%+.1fs", x.Seconds()))
	}
	return l
}
