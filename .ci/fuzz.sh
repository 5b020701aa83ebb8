#!/usr/bin/env bash
# Fuzzes every parser of untrusted input: each Fuzz target of the module
# (found by name, so a new one is fuzzed without editing this script) for
# FUZZTIME. `make fuzz` runs it for 10 s a target, `make bench` for 2 min.
# `make test` does not run it: every target's seed corpus and kept findings
# (testdata/fuzz) run there as ordinary tests (go test ./...), which is
# what fits CI's budget (fuzzing is BENCHMARKS.md's "fuzz" row).
#
#   FUZZTIME=30s bash .ci/fuzz.sh            every target, 30 s each
#   FUZZ='Lookup|Find' bash .ci/fuzz.sh      only the targets whose name matches
#
# A finding fails the run; go test has written the input under the
# package's testdata/fuzz/TARGET/: fix the parser and commit the input,
# which then runs as a seed in every go test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH GOFLAGS=-buildvcs=false

FUZZTIME=${FUZZTIME:-10s}
FUZZ=${FUZZ:-.}

# Large inputs (disk images) would spend the time minimising each new
# coverage-increasing input (60 s by default): keep that short.
MINIMIZE=${FUZZMINIMIZE:-2s}

targets=$(git ls-files '*_test.go' | xargs grep -H '^func Fuzz[A-Za-z0-9_]*(f \*testing.F)' |
	sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' | sort -u | grep -E " .*(${FUZZ})" || true)
if [ -z "$targets" ]; then
	echo "fuzz: no target matches $FUZZ"
	exit 1
fi
start=$(date +%s)
failed=0
while read -r dir name; do
	t0=$(date +%s)
	if out=$(go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime="$MINIMIZE" "./$dir" </dev/null 2>&1); then
		execs=$(printf '%s\n' "$out" | grep -oE 'execs: [0-9]+' | tail -1 | cut -d' ' -f2 || true)
		printf 'fuzz: %-28s %-22s ok   %6s execs in %ss\n' "$dir" "$name" "${execs:-?}" "$(($(date +%s) - t0))"
	else
		failed=1
		printf 'fuzz: %-28s %-22s FAIL\n%s\n' "$dir" "$name" "$out"
		echo "fuzz: the failing input is under $dir/testdata/fuzz/$name/: fix the parser and commit the input as a seed"
	fi
done <<<"$targets"
echo "fuzz: $(wc -l <<<"$targets") targets, ${FUZZTIME} each, $(($(date +%s) - start))s in all"
exit $failed
