package build

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
)

func event() *dashboard.DashboardBuilder {
	return newDashboard(EventUID, "statustrace: event",
		"One async event by request ID: current status, transition timeline, attempts, errors and its trace").
		WithVariable(datasourceVar()).
		WithVariable(tenantVar()).
		WithVariable(dashboard.NewTextBoxVariableBuilder("request_id").
			Label("Request ID").
			Description("The event's request ID (exact)")).
		WithPanel(newTable().Id(1).
			Title("Event").
			Description("Current status and fields of the event (independent of the time range).").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("event_fields"))).
			GridPos(grid(0, 0, 8, 14)).
			ShowHeader(false).
			OverrideByName("value", append(mappings(), colorText()...))).
		WithPanel(statetimeline.NewPanelBuilder().Id(2).
			Title("Transition timeline").
			Description("The event's states over time, from its deduplicated transitions.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("event_timeline"))).
			GridPos(grid(8, 0, 16, 6)).
			Mappings(stateMappings()).
			ShowValue(common.VisibilityModeAlways).
			MergeValues(true).
			RowHeight(0.8)).
		WithPanel(stat.NewPanelBuilder().Id(3).
			Title("Trace").
			Description("The event's trace ID; click it to open the trace in Explore.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("event_trace_id"))).
			GridPos(grid(8, 6, 16, 8)).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false).Fields("/^trace_id$/")).
			TextMode(common.BigValueTextModeValue).
			ColorMode(common.BigValueColorModeNone).
			GraphMode(common.BigValueGraphModeNone).
			NoValue("no trace recorded").
			DataLinks([]cog.Builder[dashboard.DashboardLink]{link("Open trace ${__value.raw} in Explore",
				exploreTraceURL("${__value.raw}", "${__data.fields.trace_from}", "${__data.fields.trace_to}"))})).
		WithPanel(newTable().Id(4).
			Title("Transitions").
			Description("Every state change in seq order; in_from_state_s is the time spent in from_state.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("event_transitions"))).
			GridPos(grid(0, 14, 24, 9)).
			OverrideByName("to_state", append(mappings(), colorText()...)).
			OverrideByName("from_state", append(mappings(), colorText()...)).
			OverrideByName("in_from_state_s", unit("s"))).
		WithPanel(newTable().Id(5).
			Title("Attempts").
			Description("One row per attempt: when it ran, how it ended, its error and node.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("event_attempts"))).
			GridPos(grid(0, 23, 12, 8)).
			OverrideByName("outcome", append(mappings(), colorText()...)).
			OverrideByName("run_s", unit("s"))).
		WithPanel(newTable().Id(6).
			Title("Errors").
			Description("Transitions that carried an error.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("event_errors"))).
			GridPos(grid(12, 23, 12, 8)).
			OverrideByName("to_state", append(mappings(), colorText()...))).
		WithPanel(dashboard.NewPanelBuilder().Id(7).
			Type("traces").
			Title("Trace view").
			Description("The event's trace from otel_traces (contrib ClickHouse exporter): status spans and the caller's spans when it sent a traceparent.").
			Datasource(Datasource()).
			WithTarget(traceQuery(sql("event_trace"))).
			GridPos(grid(0, 31, 24, 16)))
}

// grid places a panel explicitly (the builder's automatic layout only fills
// rows left to right).
func grid(x, y, w, h uint32) dashboard.GridPos {
	return dashboard.GridPos{X: x, Y: y, W: w, H: h}
}
