package queries

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/statustrace/statustrace/internal/schema"
)

// Span is one span of an event's trace, from otel_traces.
type Span struct {
	Time          time.Time     `json:"time"`
	SpanID        string        `json:"span_id"`
	ParentSpanID  string        `json:"parent_span_id,omitempty"`
	Name          string        `json:"name"`
	Service       string        `json:"service"`
	Kind          string        `json:"kind"`
	Duration      time.Duration `json:"duration_ns"`
	StatusCode    string        `json:"status_code"`
	StatusMessage string        `json:"status_message,omitempty"`
}

// MaxSpans bounds TraceSpans.
const MaxSpans = 500

// traceMargin widens the event's time range to find its trace's spans: a
// caller's spans start before the event is queued and may end after it.
const traceMargin = time.Hour

// TraceSpans returns the spans of an event's trace from otel_traces (oldest
// first, at most MaxSpans), or nil when the event has no trace or the table
// does not exist (the full-trace pipeline is optional). The event must come
// from Get with the caller's scope: the trace ID is taken from it.
func (s *Store) TraceSpans(ctx context.Context, d *EventDetail) ([]Span, error) {
	if d == nil || d.TraceID == "" {
		return nil, nil
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
		clickhouse.Named("t", schema.OtelTraces)).Scan(&n); err != nil {
		return nil, fmt.Errorf("check %s: %w", schema.OtelTraces, err)
	}
	if n == 0 {
		return nil, nil
	}
	from, to := d.StartTime.Add(-traceMargin), d.LastTime.Add(traceMargin)
	rows, err := s.conn.Query(ctx, compiled.sql["trace_spans"], clickhouse.Named("trace_id", d.TraceID),
		clickhouse.Named("from_ns", from.UnixNano()), clickhouse.Named("to_ns", to.UnixNano()), clickhouse.Named("limit", uint32(MaxSpans)))
	if err != nil {
		return nil, fmt.Errorf("trace spans: %w", err)
	}
	defer rows.Close()
	var out []Span
	for rows.Next() {
		var (
			sp  Span
			tns int64
			dur uint64
		)
		if err := rows.Scan(&tns, &sp.SpanID, &sp.ParentSpanID, &sp.Name, &sp.Service, &sp.Kind, &dur, &sp.StatusCode, &sp.StatusMessage); err != nil {
			return nil, fmt.Errorf("trace spans row: %w", err)
		}
		sp.Time, sp.Duration = fromNs(tns), time.Duration(dur)
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trace spans rows: %w", err)
	}
	return out, nil
}
