package build

import (
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"

	stevent "github.com/statustrace/statustrace/event"
)

// waitingStates are the states of events waiting for a worker, from event.
var waitingStates = func() string {
	names := []string{}
	for _, s := range stevent.WaitingStates() {
		names = append(names, "'"+s.String()+"'")
	}
	return "(" + strings.Join(names, ", ") + ")"
}()

// backlogSQL: per function, the events waiting for a worker now and the age
// of the oldest (since its acceptance) — AWS Lambda's AsyncEventAge. Not
// limited to the time range: the backlog is the present.
var backlogSQL = sql(`
SELECT namespace, function, count() AS waiting,
    dateDiff('millisecond', min(accepted_at), now64(3)) / 1000 AS oldest_age_s
FROM (
    SELECT namespace, function, argMaxMerge(state) AS current_state,
        ifNull(min(start_time), min(first_time)) AS accepted_at
    FROM events
    WHERE ` + keyFilters + `
    GROUP BY tenant, namespace, function, qualifier, request_id
    HAVING max(last_time) >= ` + cutoff + ` AND current_state IN ` + waitingStates + `
)
GROUP BY namespace, function
ORDER BY oldest_age_s DESC, namespace, function
LIMIT 20`)

// BacklogPanelTitle is the overview's backlog panel.
const BacklogPanelTitle = "Backlog now: waiting events and the oldest's age"

func backlogPanel() *table.PanelBuilder {
	return newTable().Id(10).
		Title(BacklogPanelTitle).
		Description("Per function, events queued or waiting for a retry now, and how long ago the oldest was accepted (not limited to the time range). The scheduler exports the same as statustrace_scheduler_backlog_oldest_age_seconds for alerting.").
		Datasource(Datasource()).
		WithTarget(tableQuery(backlogSQL)).
		Span(24).Height(8).
		OverrideByName("oldest_age_s", []dashboard.DynamicConfigValue{{Id: "unit", Value: "s"}})
}
