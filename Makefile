# statustrace: the two commands a newcomer needs are `make demo` and `make test`.
# Everything that needs ClickHouse uses CLICKHOUSE_DSN when it is set, and the
# local endpoint of deploy/local (embedded ClickHouse, no server) otherwise.
SHELL := bash
GO ?= go
BIN := bin

.PHONY: all build vet test bench bench-freshness-local demo clickhouse clickhouse-stop clean

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

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# Starts the local ClickHouse endpoint unless CLICKHOUSE_DSN is set (idempotent)
# and prints the DSN to use.
clickhouse:
	@if [ -n "$$CLICKHOUSE_DSN" ]; then echo "$$CLICKHOUSE_DSN"; else deploy/local/start.sh; fi

clickhouse-stop:
	@deploy/local/stop.sh

# The whole suite against a real ClickHouse engine. go test runs packages in
# parallel; they share one endpoint and each test gets its own database.
test: vet
	@dsn=$$($(MAKE) -s clickhouse) && echo "ClickHouse: $$dsn" && \
	  CLICKHOUSE_DSN=$$dsn $(GO) test -count=1 -timeout 30m ./...

# Benchmarks print `BENCH <name> ...` summary lines (ratios against a baseline
# measured in the same run). The local engine's memory never shrinks, so each
# heavy ClickHouse benchmark gets a fresh local endpoint (unless CLICKHOUSE_DSN).
fresh-clickhouse = if [ -z "$$CLICKHOUSE_DSN" ]; then deploy/local/stop.sh >/dev/null; fi; dsn=$$($(MAKE) -s clickhouse)

bench: bench-plugin bench-scheduler
	@$(fresh-clickhouse) && CLICKHOUSE_DSN=$$dsn $(MAKE) -s bench-exporter
	@$(fresh-clickhouse) && CLICKHOUSE_DSN=$$dsn $(MAKE) -s bench-queries
	@$(MAKE) -s bench-freshness-local

# Freshness needs an engine that ingests 5,000 transitions/s beside the rest of
# the pipeline on this machine: the local endpoint runs it on the native chDB
# engine (STATUSTRACE_LOCAL_ENGINE=native), then, for comparison, on the
# default chdb-wasm engine, which cannot keep up (printed as
# `BENCH freshness_wasm_engine`). Where the native engine does not install,
# the wasm run is the only one and prints `BENCH freshness`. With
# CLICKHOUSE_DSN it runs once, there.
bench-freshness-local:
	@if [ -n "$$CLICKHOUSE_DSN" ]; then $(MAKE) -s bench-freshness; exit; fi; \
	deploy/local/stop.sh >/dev/null; \
	if dsn=$$(STATUSTRACE_LOCAL_ENGINE=native deploy/local/start.sh); then \
	  CLICKHOUSE_DSN=$$dsn STATUSTRACE_BENCH_ENGINE="local endpoint, native chDB" $(MAKE) -s bench-freshness || exit; \
	  name=freshness_wasm_engine; \
	else \
	  echo "the native engine is not available here: freshness runs on chdb-wasm only"; name=freshness; \
	fi; \
	deploy/local/stop.sh >/dev/null; dsn=$$(STATUSTRACE_LOCAL_ENGINE=wasm deploy/local/start.sh) && \
	  CLICKHOUSE_DSN=$$dsn STATUSTRACE_BENCH_ENGINE="local endpoint, chdb-wasm" STATUSTRACE_BENCH_NAME=$$name \
	    $(MAKE) -s bench-freshness && deploy/local/stop.sh >/dev/null

# The whole pipeline on this machine: see internal/stack/demo.mk.
demo: demo-run

clean:
	rm -rf $(BIN) .cache
