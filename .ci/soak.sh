#!/usr/bin/env bash
# make soak: the node under abuse, outside CI's time budget (hours on 2
# cores): SOAK_KILLS kill -9 of random module processes on a running node
# (1,000 by default) and SOAK_CUTS power cuts during a first boot (50).
# Each writes its section of BENCHMARKS.md. SOAK=TestSoakKills runs one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH GOFLAGS=-buildvcs=false
go test -tags soak -run "${SOAK:-TestSoak}" -v -count=1 -timeout "${SOAK_TIMEOUT:-24h}" ./tests/ 2>&1 |
	grep -Ev '^(=== RUN|    console: )'
