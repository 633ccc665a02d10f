package queries_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/querytest"
)

// BenchmarkDurationsCost seeds events inside ClickHouse (three transitions
// each, with the durations the exporter stores, so the digest view runs),
// spread over 70 hours, and counts the rows a 3-day Durations reads — from
// the digests and, for comparison, from the raw transitions — then seeds as
// many again into the same window and counts again. It prints
//
//	BENCH durations_read_rows events=N read=R
//	BENCH durations_raw_read_rows events=N read=R
//
// at 1x and 2x and the ratios. The digest read stays flat: the digest table
// holds one row per (function, minute, kind), not per event. Read counts are
// ClickHouse's own (see BenchmarkQueryCost for why the local run uses
// chdb-wasm). STATUSTRACE_BENCH_EVENTS sets the 1x load (default 500000).
func BenchmarkDurationsCost(b *testing.B) {
	ctx := context.Background()
	var db *chtest.DB
	if os.Getenv("CLICKHOUSE_DSN") != "" {
		db = chtest.New(b)
	} else {
		db = chtest.NewOn(b, chtest.HTTP)
	}
	n := 500_000
	if v := os.Getenv("STATUSTRACE_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("STATUSTRACE_BENCH_EVENTS=%q: want an integer >= 1000", v)
		}
	}
	if err := querytest.Setup(ctx, db.Conn, db.Name); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	start := now.Add(-71 * time.Hour)
	gap := 70 * time.Hour / time.Duration(n)
	counter, err := newReadCounter(db)
	if err != nil {
		b.Fatal(err)
	}
	rec := &recordingConn{Conn: db.Conn}
	st, err := queries.New(ctx, rec)
	if err != nil {
		b.Fatal(err)
	}
	w := queries.TimeRange{From: now.Add(-72 * time.Hour), To: now}
	q := queries.StatsQuery{Namespace: "default", Window: w}
	sc := queries.Scope{Tenant: "bench-0"}
	measure := func(events int) (digest, raw uint64) {
		rec.reset()
		d, err := st.Durations(ctx, sc, q)
		if err != nil || d.QueueWaits == 0 {
			b.Fatalf("durations: %+v %v", d, err)
		}
		if digest, err = counter.readRows(ctx, rec.calls); err != nil {
			b.Fatal(err)
		}
		rec.reset()
		if _, err := st.DurationsFromTransitions(ctx, sc, q); err != nil {
			b.Fatal(err)
		}
		if raw, err = counter.readRows(ctx, rec.calls); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("BENCH durations_read_rows events=%d read=%d\n", events, digest)
		fmt.Printf("BENCH durations_raw_read_rows events=%d read=%d\n", events, raw)
		fmt.Printf("    (queue waits %d, p50 %v p99 %v; run p50 %v; end to end p50 %v)\n",
			d.QueueWaits, d.QueueWait.P50, d.QueueWait.P99, d.Run.P50, d.EndToEnd.P50)
		return digest, raw
	}
	seedDurations(b, db.Conn, 0, n, start, gap, 0)
	d1, r1 := measure(n)
	seedDurations(b, db.Conn, uint64(n), n, start, gap, gap/2)
	d2, r2 := measure(2 * n)
	fmt.Printf("BENCH durations_read_rows_ratio 2x/1x=%.3f (raw transitions: %.3f)\n", float64(d2)/float64(d1), float64(r2)/float64(r1))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := st.Durations(ctx, sc, q); err != nil {
			b.Fatal(err)
		}
	}
}

// seedDurSQL is BenchmarkQueryCost's seed with the durations: queue waits
// of 1.5s plus up to a second, runs of 1.5s plus up to 4 seconds.
var seedDurSQL = `INSERT INTO ` + schema.Transitions + ` (` + strings.Join([]string{
	schema.ColTenant, schema.ColNamespace, schema.ColFunction, schema.ColQualifier, schema.ColRequestID,
	schema.ColSeq, schema.ColAttempt, schema.ColFromState, schema.ColToState, schema.ColTime,
	schema.ColErrorCode, schema.ColErrorMessage, schema.ColInvokeType, schema.ColNode, schema.ColTraceID,
	schema.ColFromStateNS, schema.ColEventNS,
}, ", ") + `)
SELECT
    concat('bench-', toString(n % 2)),
    'default',
    concat('fn-', toString(intDiv(n, 2) % 10)),
    'LATEST',
    ` + requestIDExpr + `,
    s,
    toUInt32(s >= 2),
    ['', 'QUEUED', 'RUNNING'][s],
    ['QUEUED', 'RUNNING', if(n % 10 = 0, 'FAILED', 'FINISHED')][s],
    fromUnixTimestamp64Nano(toInt64({start_ns:Int64} + toInt64(n % {per_window:UInt64}) * {gap_ns:Int64} + {shift_ns:Int64} + (s - 1) * 1500000000), 'UTC'),
    if(s = 3 AND n % 10 = 0, 'HandlerError', ''),
    if(s = 3 AND n % 10 = 0, 'handler returned an error', ''),
    'async',
    concat('node-', toString(n % 3)),
    toFixedString(unhex(leftPad(hex(n + 1), 32, '0')), 16),
    [0, 1500000000 + (n % 1000) * 1000000, 1500000000 + (n % 4000) * 1000000][s],
    if(s = 3, 3000000000 + (n % 4000) * 1000000, 0)
FROM (SELECT number + {offset:UInt64} AS n FROM numbers({count:UInt64}))
ARRAY JOIN [1, 2, 3] AS s`

func seedDurations(b *testing.B, conn driver.Conn, offset uint64, count int, start time.Time, gap, shift time.Duration) {
	b.Helper()
	ctx := context.Background()
	t0 := time.Now()
	for done := 0; done < count; done += seedChunk {
		c := min(seedChunk, count-done)
		err := conn.Exec(ctx, seedDurSQL,
			clickhouse.Named("start_ns", start.UnixNano()), clickhouse.Named("per_window", uint64(count)),
			clickhouse.Named("gap_ns", int64(gap)), clickhouse.Named("shift_ns", int64(shift)),
			clickhouse.Named("offset", offset+uint64(done)), clickhouse.Named("count", uint64(c)))
		if err != nil {
			b.Fatalf("seed events %d..%d: %v", offset+uint64(done), offset+uint64(done+c), err)
		}
	}
	inserted := time.Since(t0)
	for _, tbl := range []string{schema.Transitions, schema.Durations} {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+tbl+" FINAL"); err != nil {
			b.Fatalf("optimize %s: %v", tbl, err)
		}
	}
	fmt.Printf("BENCH seed events=%d insert_seconds=%.1f events_per_second=%.0f\n", count, inserted.Seconds(), float64(count)/inserted.Seconds())
}
