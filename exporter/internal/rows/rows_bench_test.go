package rows

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/statustrace/statustrace/event"
)

// BenchmarkMap is the exporter's own work per batch before the insert: a
// batch of 10,000 transition spans (5 per event, one trace per event)
// turned into columns by Map (two halves side by side) and, in the same
// run, by the one pass Map made before (one goroutine). Both reuse their
// columns' memory, as the exporter's pool does while the GC leaves it
// alone. It prints
// BENCH map ns_per_span=<Map> one_pass_ns_per_span=<baseline> ratio=<Map/baseline>.
func BenchmarkMap(b *testing.B) {
	const n = 10_000
	td, ss := newTraces()
	for i := range n {
		sp := goodSpan(ss, "req-"+strconv.Itoa(i/5), int64(i%5+1), "", "QUEUED")
		sp.SetTraceID(pcommon.TraceID{byte(i / 5), byte(i / 5 >> 8), 7})
	}
	spans := []ptrace.SpanSlice{ss.Spans()}
	var took [2]time.Duration
	c, one := new(Columns), new(Columns)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Reset()
		t0 := time.Now()
		if st := Map(td, c, window); st.Rows != n {
			b.Fatalf("%d rows", st.Rows)
		}
		took[0] += time.Since(t0)

		one.Reset()
		var st Stats
		t0 = time.Now()
		mapRange(spans, 0, n, one, &st, window)
		took[1] += time.Since(t0)
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / n }
	fmt.Printf("BENCH map ns_per_span=%.0f one_pass_ns_per_span=%.0f ratio=%.3f\n", per(took[0]), per(took[1]), float64(took[0])/float64(took[1]))
}

// BenchmarkDriverAppend is the driver's share of an insert: the columns of
// a mapped batch (10,000 spans, 5 per event) appended to clickhouse-go's
// columns, as Slices hands them over (LowCardinality columns boxed) and,
// in the same run, as the plain typed slices. It prints
// BENCH driver_append ns_per_row=<Slices> plain_ns_per_row=<baseline> ratio=<Slices/baseline>.
func BenchmarkDriverAppend(b *testing.B) {
	const n = 10_000
	td, ss := newTraces()
	for i := range n {
		sp := goodSpan(ss, "req-"+strconv.Itoa(i/5), int64(i%5+1), "", "QUEUED")
		sp.Attributes().PutStr(event.AttrFunction, "fn-"+strconv.Itoa(i/5%20))
		sp.Attributes().PutStr(event.AttrNode, "node-"+strconv.Itoa(i%7))
	}
	var c Columns
	if st := Map(td, &c, window); st.Rows != n {
		b.Fatalf("%d rows", st.Rows)
	}
	appendAll := func(slices []any) time.Duration {
		t0 := time.Now()
		for i, s := range slices {
			col, err := column.Type(InsertColumns[i].Type).Column(InsertColumns[i].Name, &column.ServerContext{Timezone: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := col.Append(s); err != nil {
				b.Fatalf("append %s: %v", InsertColumns[i].Name, err)
			}
		}
		return time.Since(t0)
	}
	plain := make([]any, len(columns))
	for i := range columns {
		plain[i] = columns[i].slice(&c)
	}
	var took [2]time.Duration
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		took[0] += appendAll(c.Slices()) // boxing included
		took[1] += appendAll(plain)
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / n }
	fmt.Printf("BENCH driver_append ns_per_row=%.0f plain_ns_per_row=%.0f ratio=%.3f\n", per(took[0]), per(took[1]), float64(took[0])/float64(took[1]))
}
