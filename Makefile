# gridnode: `make run` boots the default image in QEMU against a local
# registrar; `make test` runs every test, QEMU boots included. Both install
# what they need first (Debian 12, as root).

export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
export GOFLAGS := -buildvcs=false

GO        ?= go
BIN       := bin/gridnode
SPEC      ?= images/node.yaml
OUT       ?= out
PORT      ?= 8080
VERSION   ?= $(shell awk '/^version:/{print $$2}' images/node.yaml)
PGURL_FILE := .cache/postgres.url

.PHONY: all deps build image run test unit integration bench matrix soak fuzz release lint clean

all: build

deps:
	@bash .ci/deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/gridnode

image: build
	$(BIN) build $(SPEC) -o $(OUT)

# The node boots with the registrar on the host's loopback, which the guest
# reaches as 10.0.2.2. Ctrl-A X quits QEMU.
run: deps image
	@bash .ci/run-local.sh $(BIN) $(OUT) $(PORT)

test: deps build
	@bash .ci/test.sh

bench: deps build
	@bash .ci/bench.sh

# The hardware matrix: every CPU, machine and firmware, disk controller,
# NIC, size and entropy source, two boots each, into BENCHMARKS.md. The
# whole product takes about a day on 2 cores; MATRIX=REGEXP boots the rows
# whose name matches (make matrix MATRIX='^qemu64,q35-bios,.*,virtio-net-pci,1cpu-512M,no-rng$').
matrix: deps build
	@BENCH=TestBenchMatrix BENCH_SKIP='^$$' BENCH_TIMEOUT=48h bash .ci/bench.sh

# The soak (outside CI's time budget): 1,000 kill -9 of module processes on
# a running node and 50 power cuts during a first boot, into BENCHMARKS.md.
# SOAK_KILLS=N SOAK_CUTS=N run fewer.
soak: deps build
	@bash .ci/soak.sh

# Every fuzz target for FUZZTIME (10s) each; make test runs their seed
# corpora only, make bench fuzzes for 2 minutes each.
fuzz: deps
	@bash .ci/fuzz.sh

release: deps build
	@test -n "$(VERSION)" || (echo "make release VERSION=x"; exit 1)
	@bash .ci/release.sh $(VERSION)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' ':!third_party'))" || (gofmt -l $$(git ls-files '*.go' ':!third_party'); exit 1)
	$(GO) vet ./...
	@bash .ci/layers.sh
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	staticcheck ./...

clean:
	rm -rf bin out dist
