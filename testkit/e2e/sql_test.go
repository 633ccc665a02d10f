package e2e

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// SQL on otel_traces, which the statustrace API does not serve (Grafana's
// trace view reads it).

// traceSpans counts the distinct spans of a trace in otel_traces (the
// contrib exporter's table, which keeps re-delivered duplicates) and how
// many of them have the given parent.
func traceSpans(ctx context.Context, conn driver.Conn, traceID, parentSpanID string) (spans, children uint64, err error) {
	err = conn.QueryRow(ctx, `
SELECT uniqExact(SpanId), uniqExactIf(SpanId, ParentSpanId = ?)
FROM otel_traces
WHERE TraceId = ?`, parentSpanID, traceID).Scan(&spans, &children)
	if err != nil {
		return 0, 0, fmt.Errorf("otel_traces: %w", err)
	}
	return spans, children, nil
}

// tracesMissing counts the tenant's events whose trace is not in otel_traces.
func tracesMissing(ctx context.Context, conn driver.Conn, tenant string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, `
SELECT count()
FROM (SELECT lower(hex(max(trace_id))) AS t FROM events WHERE tenant = ? GROUP BY request_id)
WHERE t NOT IN (SELECT DISTINCT TraceId FROM otel_traces)`, tenant).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("otel_traces: %w", err)
	}
	return n, nil
}
