package demo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The SQL the demo reads the status views with, bound parameters only. It
// is the fallback for a checkout without the statustrace CLI.

// settledCounts returns the tenant's events in the events view and how many
// of them have reached a terminal state.
func settledCounts(ctx context.Context, conn driver.Conn, tenant string) (events, terminal uint64, err error) {
	err = conn.QueryRow(ctx, `
SELECT count(), countIf(st IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED'))
FROM (
  SELECT argMaxMerge(state) AS st
  FROM events
  WHERE tenant = ?
  GROUP BY tenant, namespace, function, qualifier, request_id
)`, tenant).Scan(&events, &terminal)
	if err != nil {
		return 0, 0, fmt.Errorf("count events: %w", err)
	}
	return events, terminal, nil
}

// printStatsSQL prints events per public status per function, with the
// retries from the statistics view.
func printStatsSQL(ctx context.Context, w io.Writer, conn driver.Conn, tenant string) error {
	rows, err := conn.Query(ctx, `
SELECT e.namespace, e.function, e.events, e.running, e.finished, e.failed, e.aborted, e.p50_ms, e.p99_ms, ifNull(r.retries, 0)
FROM (
  SELECT namespace, function, count() AS events,
         countIf(st NOT IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED')) AS running,
         countIf(st = 'FINISHED') AS finished,
         countIf(st IN ('FAILED', 'EXPIRED')) AS failed,
         countIf(st = 'ABORTED') AS aborted,
         quantileIf(0.5)(dateDiff('millisecond', start_t, end_t), end_t IS NOT NULL) AS p50_ms,
         quantileIf(0.99)(dateDiff('millisecond', start_t, end_t), end_t IS NOT NULL) AS p99_ms
  FROM (
    SELECT namespace, function, argMaxMerge(state) AS st, min(start_time) AS start_t, max(end_time) AS end_t
    FROM events
    WHERE tenant = ?
    GROUP BY tenant, namespace, function, qualifier, request_id
  )
  GROUP BY namespace, function
) AS e
LEFT JOIN (
  SELECT namespace, function, uniqExactMerge(transitions) AS retries
  FROM stats_minute
  WHERE tenant = ? AND to_state = 'RETRYING'
  GROUP BY namespace, function
) AS r ON e.namespace = r.namespace AND e.function = r.function
ORDER BY e.namespace, e.function`, tenant, tenant)
	if err != nil {
		return fmt.Errorf("statistics: %w", err)
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NAMESPACE/FUNCTION\tEVENTS\tRUNNING\tFINISHED\tFAILED\tABORTED\tRETRIES\tP50 END-TO-END\tP99\t")
	var total [6]uint64
	for rows.Next() {
		var ns, fn string
		var events, running, finished, failed, aborted, retries uint64
		var p50, p99 float64
		if err := rows.Scan(&ns, &fn, &events, &running, &finished, &failed, &aborted, &p50, &p99, &retries); err != nil {
			return fmt.Errorf("statistics: %w", err)
		}
		fmt.Fprintf(tw, "%s/%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", ns, fn, events, running, finished, failed, aborted, retries, ms(p50), ms(p99))
		for i, v := range []uint64{events, running, finished, failed, aborted, retries} {
			total[i] += v
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("statistics: %w", err)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t\t\t\n", total[0], total[1], total[2], total[3], total[4], total[5])
	return tw.Flush()
}

func ms(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	if d >= time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// printLookupSQL prints one event: current status and its timeline.
func printLookupSQL(ctx context.Context, w io.Writer, conn driver.Conn, tenant, requestID string) error {
	var ns, fn, q, st, traceID, errCode, errMsg string
	var attempts uint32
	err := conn.QueryRow(ctx, `
SELECT namespace, function, qualifier, argMaxMerge(state), max(attempts), lower(hex(max(trace_id))),
       argMaxMerge(last_error_code), argMaxMerge(last_error_message)
FROM events
WHERE tenant = ? AND request_id = ?
GROUP BY tenant, namespace, function, qualifier, request_id`, tenant, requestID).Scan(&ns, &fn, &q, &st, &attempts, &traceID, &errCode, &errMsg)
	if err != nil {
		return fmt.Errorf("lookup %s: %w", requestID, err)
	}
	fmt.Fprintf(w, "request_id %s  %s/%s:%s  state %s  attempts %d  trace_id %s\n", requestID, ns, fn, q, st, attempts, traceID)
	if errCode != "" {
		fmt.Fprintf(w, "last error %s: %s\n", errCode, oneLine(errMsg))
	}
	rows, err := conn.Query(ctx, `
SELECT seq, attempt, from_state, to_state, time, node, error_code
FROM transitions FINAL
WHERE tenant = ? AND request_id = ?
ORDER BY seq`, tenant, requestID)
	if err != nil {
		return fmt.Errorf("timeline %s: %w", requestID, err)
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SEQ\tATTEMPT\tTRANSITION\tTIME\t+\tNODE\tERROR")
	var first time.Time
	for rows.Next() {
		var seq uint64
		var attempt uint32
		var from, to, node, code string
		var t time.Time
		if err := rows.Scan(&seq, &attempt, &from, &to, &t, &node, &code); err != nil {
			return fmt.Errorf("timeline %s: %w", requestID, err)
		}
		if first.IsZero() {
			first = t
		}
		tr := to
		if from != "" {
			tr = from + " → " + to
		}
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\t%s\t%s\n", seq, attempt, tr, t.Local().Format("15:04:05.000"), t.Sub(first).Round(time.Millisecond), node, code)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("timeline %s: %w", requestID, err)
	}
	return tw.Flush()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
