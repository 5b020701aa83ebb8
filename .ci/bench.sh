#!/usr/bin/env bash
# make bench: measures and rewrites the sections of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH GOFLAGS=-buildvcs=false
GRIDNODE_TEST_POSTGRES=$(bash .ci/postgres.sh)
export GRIDNODE_TEST_POSTGRES
# The hardware matrix (TestBenchMatrix) takes hours: `make matrix` runs it.
go test -tags bench -run "${BENCH:-TestBench}" -skip "${BENCH_SKIP:-TestBenchMatrix}" -v -count=1 \
	-timeout "${BENCH_TIMEOUT:-120m}" ./tests/ 2>&1 | grep -Ev '^(=== RUN|    console: )'
