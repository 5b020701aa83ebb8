#!/usr/bin/env bash
# Every test: lint, unit tests of every package, and the QEMU integration
# tests in tests/, with a local PostgreSQL for the registrar's scaled store.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH GOFLAGS=-buildvcs=false

# Under CI a test that lacks a component fails instead of skipping; make test
# installs every component first, so the same holds here.
export CI=${CI:-1}

GRIDNODE_TEST_POSTGRES=$(bash .ci/postgres.sh)
export GRIDNODE_TEST_POSTGRES

echo "== lint"
# third_party/ is upstream code, kept byte for byte but for its patches.
unformatted=$(gofmt -l $(git ls-files '*.go' ':!third_party'))
if [ -n "$unformatted" ]; then echo "gofmt: $unformatted"; exit 1; fi
go vet ./...
bash .ci/layers.sh

mkdir -p .cache
echo "== tests"
# The integration tests boot QEMU under TCG; give them the time a 2-core CI
# machine needs, and run packages two at a time.
go test -p 2 -timeout 40m -count=1 ./... 2>&1 | tee .cache/test.log | grep -Ev '^(=== RUN|=== PAUSE|=== CONT)'
exit "${PIPESTATUS[0]}"
