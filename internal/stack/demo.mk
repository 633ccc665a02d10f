# The demo, the end-to-end and chaos tests and the freshness benchmark
# (internal/stack, testkit/e2e, testkit/chaos, cmd/statustrace-demo), for the top-level Makefile to include:
#   include internal/stack/demo.mk
#   demo: demo-run
# Usable alone too: make -f internal/stack/demo.mk demo-run
GO ?= go
BIN ?= bin

.PHONY: demo-run test-e2e test-chaos bench-freshness screenshots

# Builds everything, then runs the whole pipeline with a few thousand
# invocations and prints the status statistics and lookups. Uses
# CLICKHOUSE_DSN, else starts the local endpoint (deploy/local). Ctrl-C stops
# it; without a terminal on stdin (CI) it stops by itself after printing.
# DEMO_FLAGS: e.g. -exit, -n 5000.
demo-run:
	$(GO) build -o $(BIN)/ ./cmd/...
	$(GO) build -o $(BIN)/statustrace-collector ./collector
	$(BIN)/statustrace-demo -bin $(BIN) $(DEMO_FLAGS)

# PNGs of each console page on the demo's data (headless Chromium: Debian's
# chromium package), for the README: docs/screenshots/*.png.
SCREENSHOTS ?= docs/screenshots
screenshots:
	$(GO) build -o $(BIN)/ ./cmd/...
	$(GO) build -o $(BIN)/statustrace-collector ./collector
	$(BIN)/statustrace-demo -bin $(BIN) -exit -n 1000 -screenshots $(SCREENSHOTS)

# The end-to-end test alone (it is also part of `go test ./...`).
test-e2e:
	$(GO) test -count=1 -timeout 10m ./internal/stack/... ./testkit/e2e/

# The chaos test alone (also part of `go test ./...`): six faults under a
# recorded workload, every event compared afterwards.
test-chaos:
	$(GO) test -count=1 -v -timeout 15m ./testkit/chaos/

# Freshness at 5,000 transitions/s through the whole pipeline; prints
# `BENCH freshness rate=... p50_ms=... p99_ms=...`.
BENCH_OUT ?= .cache/bench
bench-freshness:
	@mkdir -p $(BENCH_OUT); set -o pipefail; \
	$(GO) test -run '^$$' -bench Freshness -benchtime 1x -timeout 20m ./testkit/e2e/ 2>&1 | tee $(BENCH_OUT)/freshness.txt
