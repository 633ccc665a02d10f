package build

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// BacklogPanelTitle is the overview's backlog panel.
const BacklogPanelTitle = "Backlog now: waiting events and the oldest's age"

// backlogPanel: per function, the events waiting for a worker now and the
// age of the oldest (sql/overview_backlog.sql).
func backlogPanel() *table.PanelBuilder {
	return newTable().Id(10).
		Title(BacklogPanelTitle).
		Description("Per function, events queued or waiting for a retry now, and how long ago the oldest was accepted (not limited to the time range). The scheduler exports the same as statustrace_scheduler_backlog_oldest_age_seconds for alerting.").
		Datasource(Datasource()).
		WithTarget(tableQuery(sql("overview_backlog"))).
		Span(24).Height(8).
		OverrideByName("oldest_age_s", []dashboard.DynamicConfigValue{{Id: "unit", Value: "s"}})
}
