package build

import (
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	evt "github.com/statustrace/statustrace/event"
)

func overview() *dashboard.DashboardBuilder {
	return newDashboard(OverviewUID, "statustrace: overview",
		"Async events: states over time, failure rate, in-flight events, queue wait and run duration, failing functions").
		WithVariable(datasourceVar()).
		WithVariable(tenantVar()).
		WithVariable(namespaceVar()).
		WithVariable(functionVar()).
		WithVariable(statusVar()).
		WithPanel(stat.NewPanelBuilder().Id(1).
			Title("In flight now").
			Description("Events whose current state is not terminal, by state (not limited to the time range).").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("overview_in_flight"))).
			Span(8).Height(5).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false).Fields("")).
			TextMode(common.BigValueTextModeValueAndName).
			ColorMode(common.BigValueColorModeNone).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(stat.NewPanelBuilder().Id(2).
			Title("Accepted and ended in range").
			Description("Events accepted (QUEUED) and events that reached each terminal state in the time range.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("overview_ended"))).
			Span(10).Height(5).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false).Fields("")).
			TextMode(common.BigValueTextModeValueAndName).
			ColorMode(common.BigValueColorModeNone).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(stat.NewPanelBuilder().Id(3).
			Title("Failure rate in range").
			Description("(FAILED + EXPIRED) / all terminal states, in the time range.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("overview_failure_rate_now"))).
			Span(6).Height(5).
			Unit("percentunit").Decimals(2).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false).Fields("")).
			Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps("green", 0.01, "orange", 0.05, "red"))).
			ColorMode(common.BigValueColorModeValue).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(stateSeries(timeseries.NewPanelBuilder().Id(4).
			Title("Transitions into each state").
			Description("Exact counts per interval (whole minutes) from the per-minute stats; a re-delivered transition counts once.").
			Datasource(Datasource()).
			WithTarget(seriesQuery(sql("overview_transitions"))).
			Span(12).Height(9).
			DisplayName("${__field.labels.to_state}").
			Unit("short").
			DrawStyle(common.GraphDrawStyleBars).
			FillOpacity(80).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)))).
		WithPanel(timeseries.NewPanelBuilder().Id(5).
			Title("Failure rate").
			Description("(FAILED + EXPIRED) / all terminal states per interval.").
			Datasource(Datasource()).
			WithTarget(seriesQuery(sql("overview_failure_rate"))).
			Span(12).Height(9).
			Unit("percentunit").Min(0).
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdFixed).FixedColor("red"))).
		WithPanel(timeseries.NewPanelBuilder().Id(6).
			Title("Queue wait").
			Description("Time from QUEUED to RUNNING, by the interval the event started in (p50, p90, p99; from the per-minute digests, within 1%).").
			Datasource(Datasource()).
			WithTarget(seriesQuery(sql("overview_queue_wait"))).
			Span(12).Height(9).
			Unit("s").Min(0)).
		WithPanel(timeseries.NewPanelBuilder().Id(7).
			Title("Run duration").
			Description("Time of each attempt, RUNNING to its outcome, by the interval the attempt ended in (p50, p90, p99; from the per-minute digests, within 1%).").
			Datasource(Datasource()).
			WithTarget(seriesQuery(sql("overview_run_duration"))).
			Span(12).Height(9).
			Unit("s").Min(0)).
		WithPanel(newTable().Id(8).
			Title("Top failing functions").
			Description("Functions with the most FAILED/EXPIRED events in the range. Click a function for its failed events.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("overview_top_failing"))).
			Span(12).Height(9).
			OverrideByName("failure_rate", unit("percentunit")).
			OverrideByName("function", dataLinks(link("Failed events of ${__data.fields.function}",
				"/d/"+ExplorerUID+"?${datasource:queryparam}&${tenant:queryparam}"+
					"&var-namespace=${__data.fields.namespace:percentencode}&var-function=${__data.fields.function:percentencode}"+
					failedStatusParams()+"&${__url_time_range}")))).
		WithPanel(newTable().Id(9).
			Title("Errors by code").
			Description("Transitions that carried an error code in the range: into FAILED/EXPIRED, into RETRYING, other.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("overview_errors_by_code"))).
			Span(12).Height(9)).
		WithPanel(backlogPanel()).
		WithPanel(endToEndPanel())
}

// stateSeries colours one series per state.
func stateSeries(b *timeseries.PanelBuilder) *timeseries.PanelBuilder {
	for _, s := range evt.States() {
		b = b.OverrideByName(s.String(), []dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": stateColors[s]}}})
	}
	return b
}

// failedStatusParams selects, in the explorer's status variable, the states
// whose public status is FAILED.
func failedStatusParams() string {
	var b strings.Builder
	for _, s := range evt.StatesOf(evt.PublicFailed) {
		b.WriteString("&var-status=" + s.String())
	}
	return b.String()
}

// steps makes threshold steps: a base colour, then (value, colour) pairs.
func steps(base string, rest ...any) []dashboard.Threshold {
	out := []dashboard.Threshold{{Color: base}}
	for i := 0; i+1 < len(rest); i += 2 {
		v := rest[i].(float64)
		out = append(out, dashboard.Threshold{Value: &v, Color: rest[i+1].(string)})
	}
	return out
}
