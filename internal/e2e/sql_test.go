package e2e

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// SQL reads of the status views, as the query side does. They stand in
// until the statustrace API/CLI reads them.

type eventRow struct {
	RequestID string
	Function  string
	State     string
	LastSeq   uint64
	Attempts  uint32
	TraceID   string
	LastError string
}

// events returns every event of the tenant, current state by the events view.
func events(ctx context.Context, conn driver.Conn, tenant string) (map[string]eventRow, error) {
	rows, err := conn.Query(ctx, `
SELECT request_id, function, argMaxMerge(state), max(last_seq), max(attempts),
       lower(hex(max(trace_id))), argMaxMerge(last_error_code)
FROM events
WHERE tenant = ?
GROUP BY tenant, namespace, function, qualifier, request_id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer rows.Close()
	out := map[string]eventRow{}
	for rows.Next() {
		var e eventRow
		if err := rows.Scan(&e.RequestID, &e.Function, &e.State, &e.LastSeq, &e.Attempts, &e.TraceID, &e.LastError); err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		out[e.RequestID] = e
	}
	return out, rows.Err()
}

type transitionRow struct {
	Seq          uint64
	Attempt      uint32
	From, To     string
	Time         time.Time
	ErrorCode    string
	ErrorMessage string
	TraceID      string
}

// timeline returns an event's transitions in seq order (duplicates collapsed).
func timeline(ctx context.Context, conn driver.Conn, tenant, requestID string) ([]transitionRow, error) {
	rows, err := conn.Query(ctx, `
SELECT seq, attempt, from_state, to_state, time, error_code, error_message, lower(hex(trace_id))
FROM transitions FINAL
WHERE tenant = ? AND request_id = ?
ORDER BY seq`, tenant, requestID)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer rows.Close()
	var out []transitionRow
	for rows.Next() {
		var t transitionRow
		if err := rows.Scan(&t.Seq, &t.Attempt, &t.From, &t.To, &t.Time, &t.ErrorCode, &t.ErrorMessage, &t.TraceID); err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// transitionCounts returns the statistics view: transitions per to_state.
func transitionCounts(ctx context.Context, conn driver.Conn, tenant string) (map[string]uint64, error) {
	rows, err := conn.Query(ctx, `
SELECT to_state, uniqExactMerge(transitions)
FROM stats_minute
WHERE tenant = ?
GROUP BY to_state`, tenant)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var st string
		var n uint64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

// traceSpans counts the spans of a trace in otel_traces (the contrib
// exporter's table) and how many of them have the given parent.
func traceSpans(ctx context.Context, conn driver.Conn, traceID, parentSpanID string) (spans, children uint64, err error) {
	err = conn.QueryRow(ctx, `
SELECT count(), countIf(ParentSpanId = ?)
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
