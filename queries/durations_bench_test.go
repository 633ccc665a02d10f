package queries_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/queries"
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
	db := benchDB(b)
	n, _ := benchEvents(b, 500_000)
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
	sd := seeding{durations: true, optimize: []string{schema.Transitions, schema.Stats}}
	sd.seed(b, db.Conn, 0, n, n, start, gap, 0)
	d1, r1 := measure(n)
	sd.seed(b, db.Conn, uint64(n), n, n, start, gap, gap/2)
	d2, r2 := measure(2 * n)
	fmt.Printf("BENCH durations_read_rows_ratio 2x/1x=%.3f (raw transitions: %.3f)\n", float64(d2)/float64(d1), float64(r2)/float64(r1))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := st.Durations(ctx, sc, q); err != nil {
			b.Fatal(err)
		}
	}
}
