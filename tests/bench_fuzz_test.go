//go:build bench

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchFuzz fuzzes every parser of untrusted input for BENCH_FUZZTIME
// (2 minutes) each through .ci/fuzz.sh, and records what ran in
// BENCHMARKS.md. make test runs only the targets' seed corpora.
func TestBenchFuzz(t *testing.T) {
	per := os.Getenv("BENCH_FUZZTIME")
	if per == "" {
		per = "2m"
	}
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join(root, ".ci", "fuzz.sh"))
	cmd.Env = append(os.Environ(), "FUZZTIME="+per)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fuzz.sh: %v\n%s", err, out)
	}
	var rows []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 6 && f[0] == "fuzz:" && f[3] == "ok" {
			rows = append(rows, fmt.Sprintf("| %s | %s | %s |", f[1], f[2], f[4]))
		}
	}
	section(t, "fuzz", fmt.Sprintf(`### Fuzzing

`+"`"+`BENCH_FUZZTIME=%s go test -tags bench -run TestBenchFuzz ./tests/`+"`"+` (`+"`"+`make bench`+"`"+`
fuzzes 2 minutes a target), %s, %s, %s in all. No target found a failing
input. `+"`"+`make test`+"`"+` runs each target's seed corpus and kept findings
(testdata/fuzz) only. The machine was shared with other work while it ran,
so the counts are lower bounds.

| package | target | inputs run |
|---|---|---|
%s`, per, time.Now().UTC().Format("2006-01-02"), machine(), time.Since(start).Round(time.Second), strings.Join(rows, "\n")))
}
