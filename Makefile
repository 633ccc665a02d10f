# statustrace: the two commands a newcomer needs are `make demo` and `make test`.
# Everything that needs ClickHouse uses CLICKHOUSE_DSN when it is set, and the
# local endpoint of deploy/local (embedded ClickHouse, no server) otherwise.
SHELL := bash
GO ?= go
BIN := bin

.PHONY: all build vet test test-short test-http bench bench-queries-local capacity demo clickhouse clickhouse-stop clickhouse-wipe clean

all: build

# Each component keeps its own targets next to its code.
include plugin/plugin.mk
include exporter/exporter.mk
include scheduler/scheduler.mk
include dashboards/dashboards.mk
include deploy/deploy.mk
include queries/queries.mk
include internal/stack/demo.mk

build:
	$(GO) build ./...
	$(GO) build -o $(BIN)/ ./cmd/...
	$(GO) build -o $(BIN)/statustrace-collector ./collector

# gofmt, go vet, and go.mod/go.sum tidy (make test runs it first).
vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# Starts the local ClickHouse endpoint unless CLICKHOUSE_DSN is set (idempotent)
# and prints the DSN to use (native protocol; STATUSTRACE_LOCAL_PROTOCOL=http
# for the HTTP one). See deploy/local/README.md for ports and settings.
clickhouse:
	@if [ -n "$$CLICKHOUSE_DSN" ]; then echo "$$CLICKHOUSE_DSN"; else deploy/local/start.sh; fi

# Stops it; its data folder is kept for the next `make clickhouse`.
clickhouse-stop:
	@deploy/local/stop.sh

# Stops it and removes its data folder (every database in it).
clickhouse-wipe:
	@deploy/local/wipe.sh

# The whole suite against a real ClickHouse engine, on the native protocol
# (production's default); tests that run on HTTP too get the local endpoint's
# HTTP address (CLICKHOUSE_HTTP_DSN). go test runs packages in parallel; they
# share one endpoint and each test gets its own database. testkit/testsummary
# keeps the output short (package lines, failed tests' output) and ends with
# every skipped test and its reason.
test: vet
	@set -o pipefail; dsn=$$($(MAKE) -s clickhouse) && echo "ClickHouse: $$dsn" && \
	  if [ -z "$$CLICKHOUSE_DSN" ]; then export CLICKHOUSE_HTTP_DSN=$$(STATUSTRACE_LOCAL_PROTOCOL=http deploy/local/start.sh); fi && \
	  $(GO) build -o $(BIN)/testsummary ./testkit/testsummary && \
	  CLICKHOUSE_DSN=$$dsn $(GO) test -json -count=1 -timeout 30m ./... | $(BIN)/testsummary

# The unit tests only: no ClickHouse, Node or npm needed (ClickHouse tests skip).
test-short:
	@set -o pipefail; $(GO) build -o $(BIN)/testsummary ./testkit/testsummary && \
	  env -u CLICKHOUSE_DSN $(GO) test -json -short -count=1 ./... | $(BIN)/testsummary

# The writers and readers once more over the HTTP interface (the suite above
# runs on the native protocol): CLICKHOUSE_HTTP_DSN, or the local endpoint's.
HTTP_TEST_PKGS := ./exporter/... ./queries/... ./internal/api/... ./testkit/e2e/ ./dashboards/...
test-http:
	@dsn=$${CLICKHOUSE_HTTP_DSN:-$$(if [ -z "$$CLICKHOUSE_DSN" ]; then STATUSTRACE_LOCAL_PROTOCOL=http deploy/local/start.sh; fi)} && \
	  if [ -z "$$dsn" ]; then echo "test-http: CLICKHOUSE_DSN is set but CLICKHOUSE_HTTP_DSN is not: nothing to run over HTTP"; exit 0; fi && \
	  echo "ClickHouse over HTTP: $$dsn" && CLICKHOUSE_DSN=$$dsn $(GO) test -count=1 -timeout 20m $(HTTP_TEST_PKGS)

# Benchmarks print `BENCH <name> ...` summary lines (ratios against a baseline
# measured in the same run) and fail only when a target is missed; runs kept
# for comparison print their figures and never fail. Every benchmark runs,
# whatever an earlier one found; the target exits non-zero if any failed. All run on the default
# local engine (or CLICKHOUSE_DSN), in throwaway databases, except the
# query-cost benchmark (below).
bench:
	@fail=0; \
	$(MAKE) -s bench-plugin || fail=1; \
	$(MAKE) -s bench-scheduler || fail=1; \
	{ dsn=$$($(MAKE) -s clickhouse) && CLICKHOUSE_DSN=$$dsn $(MAKE) -s bench-exporter; } || fail=1; \
	$(MAKE) -s bench-queries-local || fail=1; \
	{ dsn=$$($(MAKE) -s clickhouse) && CLICKHOUSE_DSN=$$dsn $(MAKE) -s bench-freshness; } || fail=1; \
	if [ $$fail = 1 ]; then echo "make bench: a benchmark missed its target or failed (see above)"; fi; \
	exit $$fail

# The query-cost benchmark counts the rows ClickHouse reads per query. Native
# chDB cannot report them (it has no system.query_log and its binding returns
# result rows only), so without CLICKHOUSE_DSN it runs on chdb-wasm: a second
# endpoint of its own (state .cache/chlocal-wasm-bench, addresses
# BENCH_WASM_ADDR / BENCH_WASM_TCP_ADDR), stopped afterwards.
BENCH_WASM_ADDR ?= 127.0.0.1:18124
BENCH_WASM_TCP_ADDR ?= 127.0.0.1:19124
bench-queries-local:
	@if [ -n "$$CLICKHOUSE_DSN" ]; then $(MAKE) -s bench-queries; exit; fi; \
	export STATUSTRACE_LOCAL_ENGINE=wasm STATUSTRACE_LOCAL_STATE=$(CURDIR)/.cache/chlocal-wasm-bench \
	  STATUSTRACE_LOCAL_ADDR=$(BENCH_WASM_ADDR) STATUSTRACE_LOCAL_TCP_ADDR=$(BENCH_WASM_TCP_ADDR); \
	dsn=$$(STATUSTRACE_LOCAL_PROTOCOL=http deploy/local/start.sh) || exit; \
	CLICKHOUSE_DSN=$$dsn $(MAKE) -s bench-queries; rc=$$?; deploy/local/stop.sh >/dev/null; exit $$rc

# Sizes a deployment from the figures `make bench` saved in .cache/bench
# (deploy/capacity): storage, CPU, collectors, shards, and insert queries and
# new parts per second per table against ClickHouse's guidance.
#   make capacity RATE=5000 DAYS=3 [CAPACITY_FLAGS='-replicas 2 -freshness 1s']
RATE ?= 5000
DAYS ?= 3
capacity:
	@$(GO) run ./cmd/capacity -rate $(RATE) -days $(DAYS) $(CAPACITY_FLAGS)

# The whole pipeline on this machine: see internal/stack/demo.mk.
demo: demo-run

clean:
	rm -rf $(BIN) .cache
