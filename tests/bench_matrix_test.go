//go:build bench

package tests

// `make matrix`: the product of the hardware matrix's axes, each row booted
// twice to ready and once with a trivial init on the same QEMU flags, the
// table written to BENCHMARKS.md. MATRIX=REGEXP boots only the rows whose
// name matches; rows booted before keep their line, so the table fills up
// over several runs. A row that cannot work is in the table with why.

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/qemu"
)

// matrixProduct is every combination of the axes.
func matrixProduct() []row {
	type mf struct {
		machine string
		fw      qemu.Firmware
	}
	type size struct{ cpus, mem int }
	var rows []row
	for _, cpu := range []string{"qemu64", "Nehalem", "max"} {
		for _, m := range []mf{{"pc", qemu.BIOS}, {"q35", qemu.BIOS}, {"q35", qemu.UEFI}} {
			for _, bus := range qemu.Buses {
				for _, nic := range []string{"virtio-net-pci", "e1000", "e1000e", "rtl8139", "vmxnet3"} {
					for _, sz := range []size{{1, 512}, {4, 4096}} {
						for _, rng := range []bool{false, true} {
							r := row{CPU: cpu, Machine: m.machine, Firmware: m.fw, Disks: []qemu.Bus{bus}, NIC: nic,
								CPUs: sz.cpus, Memory: sz.mem, RNG: rng}
							if bus == qemu.BusIDE && m.machine == "q35" {
								r.Skip = "q35 has no IDE controller (its ICH9 disk controller is AHCI, a row of its own)"
							}
							rows = append(rows, r)
						}
					}
				}
			}
		}
	}
	return rows
}

func TestBenchMatrix(t *testing.T) {
	filter := regexp.MustCompile(os.Getenv("MATRIX"))
	r := image(t, "node")
	trivial := trivialInitramfs(t)
	var mu sync.Mutex
	lines := map[string]string{}
	t.Run("rows", func(t *testing.T) {
		for _, rw := range matrixProduct() {
			if !filter.MatchString(rw.String()) {
				continue
			}
			if rw.Skip != "" {
				lines[rw.String()] = matrixLine(rw, rowResult{}, 0, "not booted: "+rw.Skip)
				continue
			}
			t.Run(rw.String(), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				res := bootRow(t, rw, dir)
				result := "ready twice"
				if t.Failed() {
					result = "FAILED (see the test log)"
				}
				// The trivial init on the same flags and disks.
				o := qemu.Options{Boot: qemu.KernelBoot(r.Kernel, trivial, r.Cmdline), CPU: rw.CPU, Machine: rw.Machine,
					Firmware: rw.Firmware, CPUs: rw.CPUs, Memory: rw.Memory, NoRNG: !rw.RNG, Disks: rowDisks(rw, dir),
					NICs: []qemu.NIC{{Model: rw.NIC}}}
				start := time.Now()
				vm := boot(t, o)
				expect(t, vm, `^trivial init: hello$`, bootTimeout)
				triv := time.Since(start)
				vm.Kill()
				mu.Lock()
				lines[rw.String()] = matrixLine(rw, res, triv, result)
				mu.Unlock()
			})
		}
	})
	writeMatrix(t, lines)
}

func matrixLine(r row, res rowResult, triv time.Duration, result string) string {
	secs := func(d time.Duration) string {
		if d == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	ratio := "–"
	if res.Second > 0 && triv > 0 {
		ratio = fmt.Sprintf("%.2f", float64(res.Second)/float64(triv))
	}
	fw := "SeaBIOS"
	if r.Firmware == qemu.UEFI {
		fw = "OVMF"
	}
	rng := "no"
	if r.RNG {
		rng = "virtio-rng"
	}
	return fmt.Sprintf("| %s | %s | %s + %s | %s | %s | %d CPU, %d MiB | %s | %s | %s | %s | %s | %s |",
		r.String(), r.CPU, r.Machine, fw, r.Disks[0], r.NIC, r.CPUs, r.Memory, rng,
		secs(res.First), secs(res.Second), secs(triv), ratio, result)
}

// writeMatrix merges lines into the matrix table of BENCHMARKS.md: rows
// booted now replace their old line, the others stay.
func writeMatrix(t *testing.T, lines map[string]string) {
	t.Helper()
	b, err := os.ReadFile(root + "/BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if i, j := strings.Index(s, "<!-- bench:matrix -->"), strings.Index(s, "<!-- /bench:matrix -->"); i >= 0 && j > i {
		for _, l := range strings.Split(s[i:j], "\n") {
			if f := strings.SplitN(l, " | ", 2); strings.HasPrefix(l, "| ") && len(f) == 2 {
				name := strings.TrimPrefix(f[0], "| ")
				if _, now := lines[name]; !now && name != "row" && !strings.HasPrefix(name, "---") {
					lines[name] = l
				}
			}
		}
	}
	var names []string
	for n := range lines {
		names = append(names, n)
	}
	sort.Strings(names)
	var rows strings.Builder
	for _, n := range names {
		rows.WriteString(lines[n] + "\n")
	}
	section(t, "matrix", fmt.Sprintf(`### Hardware matrix (issue 11)

Command: `+"`make matrix`"+` (`+"`go test -tags bench -run TestBenchMatrix ./tests/`"+`; `+"`MATRIX=REGEXP`"+` boots only the rows whose name matches, and rows booted in earlier runs keep their line)
Machine of the last run: %s
Rows in the table: %d of the product's %d (3 CPU models × 3 machine and firmware × %d disk controllers × 5 NICs × 2 sizes × with and without an RNG).

Each row is the default image (direct kernel boot) on one machine: CPU model, machine and firmware, one empty disk on the controller named, one NIC, size, and whether a virtio-rng device feeds the random pool (none of the three CPU models has RDRAND under TCG, so "no" is a machine without a hardware RNG). Booted twice on the same disk, each time to `+"`gridnode: ready`"+` with the disk counted in the capacity and the cache on it (the first boot makes the cache file system, the second is a node's usual boot, and loads the key it made); then a trivial init (prints a line) on the same flags and disk. Times are QEMU start → the line, two QEMUs at a time under TCG.

| row | CPU | machine + firmware | disk controller | NIC | size | RNG | first boot | second boot | trivial init | second / trivial | result |
|---|---|---|---|---|---|---|---|---|---|---|---|
%s`, machine(), len(names), len(matrixProduct()), len(qemu.Buses), rows.String()))
}
