package statustraceexporter

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/statustrace/statustrace/exporter/internal/rows"
	"github.com/statustrace/statustrace/internal/timewindow"
)

// BenchmarkMap is the exporter's own work per batch before the insert: the
// plugin's spans (BenchmarkExporterVsContrib's batch of 10,000) turned into
// columns. It is what separates the exporter from the ceiling.
func BenchmarkMap(b *testing.B) {
	td := statusSpansOnly(genTransitions(rand.New(rand.NewPCG(1, 2)), 10_000, "m-"))
	window := timewindow.Window{Retention: 72 * time.Hour, MaxSkew: time.Hour}.At(time.Now())
	c := new(rows.Columns)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Reset()
		if st := rows.Map(td, c, window); st.Rows != 10_000 {
			b.Fatalf("%d rows", st.Rows)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/span")
}
