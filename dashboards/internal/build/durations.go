package build

import (
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/statustrace/statustrace/internal/sqltmpl"
)

// digestData is what sql/_duration_digest.sql renders with: the tables and
// one kind of duration (checked by the template's durationKind against
// internal/schema).
type digestData struct {
	sqltmpl.Tables
	Kind string
}

// digest is the template function that hands _duration_digest.sql its
// data: {{template "_duration_digest.sql" (digest . "run")}}.
func digest(t sqltmpl.Tables, kind string) digestData { return digestData{t, kind} }

// EndToEndPanelTitle is the overview's end-to-end duration panel.
const EndToEndPanelTitle = "End-to-end duration"

func endToEndPanel() *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Id(11).
		Title(EndToEndPanelTitle).
		Description("Time from acceptance to the terminal state, retries and waits included, by the interval the event ended in (p50, p90, p99; from the per-minute digests, within 1%).").
		Datasource(Datasource()).
		WithTarget(seriesQuery(sql("overview_end_to_end"))).
		Span(24).Height(9).
		Unit("s").Min(0)
}
