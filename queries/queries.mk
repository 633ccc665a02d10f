# Make targets of the read side: queries/ (SQL views and the package that runs
# them), internal/api (the HTTP JSON API) and cmd/statustrace (serve and the
# CLI). The top-level Makefile includes this file:  include queries/queries.mk
# Run from the repository root. Without the include: make -f queries/queries.mk test-queries
# ClickHouse: CLICKHOUSE_DSN, or the local endpoint of deploy/local (testkit/chtest).

.PHONY: test-queries bench-queries bench-durations build-statustrace

# Unit tests and the engine tests (seeded data with duplicates, out-of-order
# arrival, rows past retention, two tenants, hostile strings); the API over
# real HTTP; the CLI in-process. About a minute on the local engine.
test-queries:
	go test -count=1 -timeout 20m ./queries/... ./internal/api/... ./cmd/statustrace/...

# Prints "BENCH lookup_read_rows at_1x=... at_2x=..." and
# "BENCH stats_read_rows events=... read=..." (at 1x and 2x), ClickHouse's own
# read_rows. STATUSTRACE_BENCH_EVENTS sets the events of the 1x load
# (default 2000000; the 2x load doubles it). Several minutes on the local engine.
# The output is kept in $(BENCH_OUT)/queries.txt for `make capacity`.
BENCH_OUT ?= .cache/bench
bench-queries:
	@mkdir -p $(BENCH_OUT); set -o pipefail; \
	go test -run '^$$' -bench '^BenchmarkQueryCost$$' -benchtime 1x -count=1 -timeout 90m ./queries/ 2>&1 | tee $(BENCH_OUT)/queries.txt

build-statustrace:
	go build -o bin/statustrace ./cmd/statustrace

# Prints "BENCH durations_read_rows events=... read=..." at 1x and 2x (the
# digests: flat) beside the raw transitions' read, and the 2x/1x ratios.
# Read counts need a server or chdb-wasm (see bench-queries).
# STATUSTRACE_BENCH_EVENTS sets the 1x load (default 500000).
bench-durations:
	go test -run '^$$' -bench '^BenchmarkDurationsCost$$' -benchtime 1x -count=1 -timeout 90m ./queries/
