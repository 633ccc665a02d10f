package statustraceexporter

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/exporter/internal/metadata"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/testkit/chtest"
)

// newDB gives the test a fresh database on the real engine.
func newDB(t testing.TB) *chtest.DB {
	t.Helper()
	return chtest.New(t)
}

// testCompression is the compression the tests insert with.
const testCompression = "lz4"

// testConfig configures the exporter for db: synchronous (no queue, no
// retry) so that a returned nil means the rows are stored.
func testConfig(db *chtest.DB) *Config {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoint = db.DSN
	cfg.Database = db.Name
	cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.BackOffConfig.Enabled = false
	cfg.Timeout = time.Minute // the local engine is slow
	cfg.Compression = testCompression
	return cfg
}

// startExporter creates and starts the exporter from its factory, waits
// until its schema is in place (created in the background), and shuts it
// down when the test ends.
func startExporter(t *testing.T, cfg *Config) exporter.Traces {
	t.Helper()
	return startExporterWith(t, cfg, exportertest.NewNopSettings(metadata.Type))
}

func startExporterWith(t *testing.T, cfg *Config, set exporter.Settings) exporter.Traces {
	t.Helper()
	ctx := context.Background()
	exp, err := NewFactory().CreateTraces(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	host := newStatusHost()
	if err := exp.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	if cfg.CreateSchema {
		host.waitFor(t, componentstatus.StatusOK, 2*time.Minute)
	}
	return exp
}

// statusHost is a component host that records the status events the
// component reports, as the collector's service does.
type statusHost struct {
	component.Host
	mu     sync.Mutex
	events []*componentstatus.Event
}

func newStatusHost() *statusHost { return &statusHost{Host: componenttest.NewNopHost()} }

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

// last is the latest reported status (StatusNone before any).
func (h *statusHost) last() componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return componentstatus.StatusNone
	}
	return h.events[len(h.events)-1].Status()
}

func (h *statusHost) waitFor(t testing.TB, want componentstatus.Status, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for h.last() != want {
		if time.Now().After(deadline) {
			t.Fatalf("component status %v after %s, want %v", h.last(), within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func deliver(t *testing.T, exp exporter.Traces, ts []transition) {
	t.Helper()
	if err := exp.ConsumeTraces(context.Background(), tracesOf(ts)); err != nil {
		t.Fatalf("export %d transitions: %v", len(ts), err)
	}
}

// q names a table of db in SQL.
func q(db *chtest.DB, table string) string { return quoteIdent(db.Name) + "." + quoteIdent(table) }

// eventsQuery reads the events table as every reader does
// (internal/sqltmpl's _event_current.sql).
var eventsQuery = `SELECT request_id,
    ` + event.SQLStateOfKey("max(state_key)") + ` AS state,
    max(last_seq) AS last_seq,
    max(attempts) AS attempts,
    toUnixTimestamp64Nano(min(first_time)) AS first_time,
    toUnixTimestamp64Nano(max(last_time)) AS last_time,
    ifNull(toUnixTimestamp64Nano(min(start_time)), 0) AS start_time,
    ifNull(toUnixTimestamp64Nano(max(end_time)), 0) AS end_time,
    tupleElement(max(error_at), 3) AS error_code,
    tupleElement(max(error_at), 4) AS error_msg,
    tupleElement(max(node_at), 2) AS last_node,
    hex(max(trace_id)) AS trace_id
FROM %s
GROUP BY tenant, namespace, function, qualifier, request_id
ORDER BY request_id`

// bruteEventsQuery recomputes the events view from the raw rows, written
// independently of the materialized view (times in whole milliseconds, as
// events keeps them).
const bruteEventsQuery = `SELECT request_id, x_state AS state, x_last_seq AS last_seq, x_attempts AS attempts,
    x_first AS first_time, x_last AS last_time, x_start AS start_time, x_end AS end_time,
    x_code AS error_code, x_msg AS error_msg, x_node AS last_node, x_trace AS trace_id
FROM (
    SELECT request_id,
        argMax(to_state, (seq, indexOf(['QUEUED','RUNNING','RETRYING','TERMINATING','FINISHED','FAILED','ABORTED','EXPIRED'], to_state))) AS x_state,
        max(seq) AS x_last_seq,
        max(attempt) AS x_attempts,
        toUnixTimestamp64Nano(toStartOfMillisecond(min(time))) AS x_first,
        toUnixTimestamp64Nano(toStartOfMillisecond(max(time))) AS x_last,
        ifNull(toUnixTimestamp64Nano(toStartOfMillisecond(minOrNullIf(time, to_state = 'QUEUED'))), 0) AS x_start,
        ifNull(toUnixTimestamp64Nano(toStartOfMillisecond(maxOrNullIf(time, to_state IN ('FINISHED','FAILED','ABORTED','EXPIRED')))), 0) AS x_end,
        argMaxIf(error_code, seq, error_code != '' OR error_message != '') AS x_code,
        argMaxIf(error_message, seq, error_code != '' OR error_message != '') AS x_msg,
        argMax(node, seq) AS x_node,
        hex(argMax(trace_id, seq)) AS x_trace
    FROM %s FINAL
    GROUP BY tenant, namespace, function, qualifier, request_id
)
ORDER BY request_id`

const statsQuery = `SELECT tenant, function, qualifier, toInt64(toUnixTimestamp(bucket)) AS bucket, to_state, error_code,
    length(maxMap(transitions).1) AS transitions
FROM %s
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code
ORDER BY tenant, function, qualifier, bucket, to_state, error_code`

const bruteStatsQuery = `SELECT tenant, function, qualifier, toInt64(toUnixTimestamp(toStartOfMinute(time))) AS bucket, to_state, error_code,
    count() AS transitions
FROM %s FINAL
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code
ORDER BY tenant, function, qualifier, bucket, to_state, error_code`

// queryCtx bounds every test query, so a stuck engine fails the test with
// a clear error instead of hanging it.
func queryCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func selectEvents(t *testing.T, db *chtest.DB, query, table string) []eventRow {
	t.Helper()
	return selectFrom[eventRow](t, db, query, table)
}

func selectStats(t *testing.T, db *chtest.DB, query, table string) []statRow {
	t.Helper()
	return selectFrom[statRow](t, db, query, table)
}

// selectFrom runs query with table (qualified) in place of its %s.
func selectFrom[T any](t *testing.T, db *chtest.DB, query, table string) []T {
	t.Helper()
	var out []T
	if err := db.Conn.Select(queryCtx(t), &out, fmt.Sprintf(query, q(db, table))); err != nil {
		t.Fatalf("select from %s: %v", table, err)
	}
	return out
}

func count(t *testing.T, db *chtest.DB, query string) uint64 {
	t.Helper()
	var n uint64
	if err := db.Conn.QueryRow(queryCtx(t), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// counts is what a duplicate delivery must not change.
type counts struct {
	Raw, Events, LastSeqs, StatTransitions uint64
}

func snapshot(t *testing.T, db *chtest.DB) counts {
	t.Helper()
	return counts{
		Raw:             count(t, db, "SELECT count() FROM "+q(db, "transitions")+" FINAL"),
		Events:          count(t, db, "SELECT count() FROM (SELECT 1 FROM "+q(db, "events")+" GROUP BY tenant, namespace, function, qualifier, request_id)"),
		LastSeqs:        count(t, db, "SELECT sum(n) FROM (SELECT max(last_seq) AS n FROM "+q(db, "events")+" GROUP BY tenant, namespace, function, qualifier, request_id)"),
		StatTransitions: count(t, db, "SELECT sum(n) FROM (SELECT length(maxMap(transitions).1) AS n FROM "+q(db, schema.Stats)+" GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code)"),
	}
}

func optimizeAll(t *testing.T, db *chtest.DB) {
	t.Helper()
	for _, tbl := range []string{"transitions", "events", schema.Stats} {
		if err := db.Conn.Exec(queryCtx(t), "OPTIMIZE TABLE "+q(db, tbl)+" FINAL"); err != nil {
			t.Fatalf("optimize %s: %v", tbl, err)
		}
	}
}

func diffEvents(t *testing.T, what string, got, want []eventRow) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s row %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
			return
		}
	}
}

func diffStats(t *testing.T, what string, got, want []statRow) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s row %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
			return
		}
	}
}
