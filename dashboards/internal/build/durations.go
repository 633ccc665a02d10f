package build

import (
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/statustrace/statustrace/internal/schema"
)

// durationDigestSQL is the p50/p90/p99 (seconds) of one kind of duration
// per interval, from durations_minute: the per-minute histograms merged per
// interval (a transition delivered twice counts once), percentiles by
// nearest rank over the bins, each within schema.DigestRelError. The read is
// one row per (function, minute, kind), however many events.
func durationDigestSQL(kind string) string {
	value := func(p string) string {
		return schema.DigestValueExpr("bins_sorted[arrayFirstIndex(c -> c >= ceil("+p+" * n), cum)]") + " / 1e9"
	}
	return sql(`
SELECT time, ` + value("0.5") + ` AS p50, ` + value("0.9") + ` AS p90, ` + value("0.99") + ` AS p99
FROM (
    SELECT time, arraySort(mapKeys(bins)) AS bins_sorted,
        arrayCumSum(arrayMap(b -> bins[b], bins_sorted)) AS cum,
        cum[-1] AS n
    FROM (
        SELECT ` + statsInterval + ` AS time, uniqExactMapMerge(digest) AS bins
        FROM durations_minute
        WHERE $__timeFilter(bucket) AND bucket >= ` + cutoff + `
          AND ` + keyFilters + `
          AND kind = '` + kind + `'
        GROUP BY time
    )
)
WHERE n > 0
ORDER BY time`)
}

var (
	// Queue wait: QUEUED -> RUNNING, by the interval the event started in.
	queueWaitSQL = durationDigestSQL(schema.DurationQueueWait)
	// Run duration: each attempt, RUNNING -> its outcome, by the interval
	// the attempt ended in.
	runDurationSQL = durationDigestSQL(schema.DurationRun)
)

// EndToEndPanelTitle is the overview's end-to-end duration panel.
const EndToEndPanelTitle = "End-to-end duration"

func endToEndPanel() *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Id(11).
		Title(EndToEndPanelTitle).
		Description("Time from acceptance to the terminal state, retries and waits included, by the interval the event ended in (p50, p90, p99; from the per-minute digests, within 1%).").
		Datasource(Datasource()).
		WithTarget(seriesQuery(durationDigestSQL(schema.DurationEndToEnd))).
		Span(24).Height(9).
		Unit("s").Min(0)
}
