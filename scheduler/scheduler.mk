# Make targets of the scheduler (scheduler/, cmd/scheduler). The top-level
# Makefile includes this file:  include scheduler/scheduler.mk
# Run from the repository root. Without the include: make -f scheduler/scheduler.mk bench-scheduler

.PHONY: test-scheduler bench-scheduler

# Needs initdb/pg_ctl (Debian package postgresql) or PG_TEST_DSN for the
# two-node test; it is skipped, saying so, when neither is there.
test-scheduler:
	go test -count=1 -timeout 10m ./scheduler/... ./cmd/scheduler/

# Prints "BENCH scheduler_trace_on_vs_off throughput_ratio=<on/off>".
bench-scheduler:
	go test -run '^$$' -bench '^BenchmarkSchedulerTraceOnVsOff$$' -benchtime 1x -count=1 -timeout 10m ./scheduler/
