# raftmq Makefile. `make test` is the README's test command and what CI runs.
GO        ?= go
PKGS      ?= ./...
BIN       := bin/raftmq
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
TEST_TIMEOUT ?= 20m

.PHONY: all build run test test-short race lint fuzz bench bench-go bench-smoke cover clean deps

all: lint test build

deps:
	$(GO) mod download

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/raftmq

# A name server and a 3-node broker group on 127.0.0.1 (configs/dledger/broker-a-n*.conf);
# data in ./data; Ctrl-C stops everything.
run: build
	./scripts/run.sh

# The full suite: unit, fault and cluster tests with the race detector.
test: lint
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	if [ -n "$$out" ]; then echo "gofmt needed in:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@bad=$$(grep -rln --include='*.go' -E '\bfmt\.Print(f|ln)?\(' --exclude-dir=cmd --exclude-dir=bench . | grep -v '_test.go' || true); \
	if [ -n "$$bad" ]; then echo "fmt.Print outside cmd/ (use log/slog):"; echo "$$bad"; exit 1; fi

# Every Fuzz target, each for FUZZTIME (go test runs one fuzz target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# The standard scenario (docs/BENCHMARKS.md): an embedded 3-node group, 1 KiB messages sent
# async (pipelined) and consumed at once, for BENCH_DURATION; prints the summary.
BENCH_DURATION ?= 30s
BENCH_FLAGS    ?= -y -w 1 -s 1024
bench: build
	./$(BIN) bench e2e --embedded --duration $(BENCH_DURATION) -ri 5000 $(BENCH_FLAGS)

# CI's smoke run of the tool: embedded, a few seconds, small counts.
bench-smoke: build
	./$(BIN) bench e2e --embedded --duration 3s -w 4 -s 1024 -ri 1000

# The Go micro-benchmarks of every package.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

cover:
	$(GO) test -count=1 -coverprofile=cover.out $(PKGS) && $(GO) tool cover -func=cover.out | tail -1

clean:
	rm -rf bin cover.out

# The compatibility suite: the official rocketmq-client-go v2.1.2 against an in-process
# cluster. A separate module (compat/go.mod) so the main module never depends on that client.
# No -race: the client itself races (e.g. rmqClient.Shutdown against its own timers).
.PHONY: compat
compat:
	cd compat && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

# The chaos soak (node/chaos_test.go): a 3-node group under 8 concurrent senders while a seeded
# loop kills or partitions one node at a time (leader or follower) and restores it, for
# CHAOS_DURATION per Raft log store (boltdb, wal); every acknowledged message must be stored
# exactly once, on byte-identical replicas. RAFTMQ_CHAOS_SEED=<seed> replays a run's faults.
# CHAOS_TIMEOUT: both runs plus 10 minutes (CHAOS_DURATION in h/m/s/ms units, else 2h).
CHAOS_DURATION ?= 5m
CHAOS_TIMEOUT  ?= $(shell echo '$(CHAOS_DURATION)' | awk '{ s = 0; x = $$0; \
	while (match(x, /^[0-9.]+(h|ms|m|s)/)) { n = substr(x, 1, RLENGTH); x = substr(x, RLENGTH + 1); \
	u = n; sub(/^[0-9.]+/, "", u); v = n + 0; if (u == "h") v *= 3600; else if (u == "m") v *= 60; \
	else if (u == "ms") v /= 1000; s += v } \
	if (x != "" || s <= 0) print "2h"; else printf "%ds\n", 2 * s + 600 }')
.PHONY: chaos
chaos:
	RAFTMQ_CHAOS=$(CHAOS_DURATION) $(GO) test -race -count=1 -timeout $(CHAOS_TIMEOUT) -run '^TestChaos$$' -v ./node

# Container image FROM scratch around bin/raftmq (no base image is pulled).
IMAGE ?= raftmq:dev
.PHONY: docker e2e-docker
docker: build
	docker build -t $(IMAGE) .

# docker-compose.yml cluster: send, consume, kill broker-a's leader, send and consume again;
# always torn down.
e2e-docker: docker
	RAFTMQ_IMAGE=$(IMAGE) ./scripts/e2e-docker.sh
