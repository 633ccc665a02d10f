# Make targets of the statustrace exporter (exporter/, collector/). The
# top-level Makefile includes this file:  include exporter/exporter.mk
# Run from the repository root. Without the include: make -f exporter/exporter.mk bench-exporter

.PHONY: test-exporter bench-exporter build-collector validate-collector

# Unit tests, the fuzz seed corpus, and the engine tests (testkit/chtest:
# CLICKHOUSE_DSN or the local endpoint of deploy/local).
test-exporter:
	go test -count=1 -timeout 20m ./exporter/... ./internal/schema/... ./internal/timewindow/... ./internal/chwrite/... \
	  ./internal/bgstart/... ./testkit/faultproxy/... ./collector/...

# Prints a table and "BENCH exporter_vs_contrib throughput_ratio=... cpu_ratio=... bytes_ratio=...".
# STATUSTRACE_BENCH_SPANS sets the number of spans (default 1000000).
# The output is kept in $(BENCH_OUT)/exporter.txt for `make capacity`.
BENCH_OUT ?= .cache/bench
bench-exporter:
	@mkdir -p $(BENCH_OUT); set -o pipefail; \
	go test -run '^$$' -bench '^BenchmarkExporterVsContrib$$' -benchtime 1x -count=1 -timeout 60m ./exporter/ 2>&1 | tee $(BENCH_OUT)/exporter.txt

build-collector:
	go build -o bin/statustrace-collector ./collector

validate-collector: build-collector
	STATUSTRACE_QUEUE_DIR=$${STATUSTRACE_QUEUE_DIR:-$$(mktemp -d)} bin/statustrace-collector validate --config collector/config.yaml
